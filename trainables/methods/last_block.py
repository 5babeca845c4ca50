"""Partial fine-tuning: the last `tune_last` blocks of the image tower, its post-LayerNorm and projection, plus the head.

The earlier blocks stay exactly pretrained; the classic transfer-learning baseline that tunes
only the most task-specific layers (Yosinski et al. 2014, "How transferable are features in
deep neural networks?").
"""

from __future__ import annotations

from trainables.errors import ConfigError, require
from trainables.methods.phase import Phase
from trainables.models import vision_layers

OPTIONS = ("tune_last",)


def check(config) -> None:
    require("tune_last", config.tune_last >= 1, "an integer >= 1")


def prepare(model, config) -> list[Phase]:
    layers, k = vision_layers(model.clip), config.tune_last
    if k > len(layers):
        raise ConfigError(f"tune_last: {k} is more than the image tower's {len(layers)} layers")
    clip = model.clip_model()
    params = [p for layer in layers[-k:] for p in layer.parameters()]
    params += [*clip.vision_model.post_layernorm.parameters(), *clip.visual_projection.parameters(),
               *model.head.parameters()]
    return [Phase("last_block", params, config.lr, config.epochs, tunes_tower=True, parts=params)]

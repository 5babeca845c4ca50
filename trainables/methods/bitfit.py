"""BitFit (Ben Zaken et al. 2022, "BitFit: Simple Parameter-efficient Fine-tuning"): the image tower's bias terms, plus the head.

Every bias of the image tower trains (attention and MLP linears, LayerNorms, the patch
embedding's if any); weights stay pretrained. In-house: peft's `bias="all"` is an option of
another method (it needs an adapter too) and marks every bias of the model trainable, the text
tower's included.
"""

from __future__ import annotations

from trainables.methods.phase import Phase


def prepare(model, config) -> list[Phase]:
    tower = model.clip_model().vision_model
    params = [p for name, p in tower.named_parameters() if name.endswith("bias")] + list(model.head.parameters())
    return [Phase("bitfit", params, config.lr, config.epochs, tunes_tower=True, parts=params)]

"""LayerNorm tuning (Zhao et al. 2024, "Tuning LayerNorm in Attention") through peft, on the image tower, plus the head.

Only the affine parameters (γ, β) of the image tower's LayerNorms train: both of every layer,
the pre-encoder and the post-encoder one. peft's `LNTuningConfig` trains a copy of each, which
starts equal to the pretrained LayerNorm.
"""

from __future__ import annotations

import warnings

from trainables.methods.peft_tower import wrap
from trainables.methods.phase import Phase

TOWER_NORMS = r".*vision_model\.(encoder\.layers\.\d+\.layer_norm[12]|pre_layrnorm|post_layernorm)"


def prepare(model, config) -> list[Phase]:
    from peft import LNTuningConfig

    with warnings.catch_warnings():
        # peft 0.21's LN-tuning layer asks every LayerNorm for in/out features, which its helper knows only
        # for linear-like layers ("Unsupported layer type ... LayerNorm ..."); LN tuning never uses them.
        warnings.filterwarnings("ignore", message=r"Unsupported layer type .*LayerNorm", category=UserWarning)
        params = wrap(model, LNTuningConfig(target_modules=TOWER_NORMS)) + list(model.head.parameters())
    return [Phase("ln_tuning", params, config.lr, config.epochs, tunes_tower=True, parts=params)]

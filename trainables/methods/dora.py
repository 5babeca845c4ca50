"""DoRA (Liu et al. 2024, "Weight-Decomposed Low-Rank Adaptation") through peft, on the image tower, plus the head.

W = m · (W₀ + scale·B·A) / ‖W₀ + scale·B·A‖_c: each wrapped linear's weight is split into a
per-output magnitude m (initialised to the column norms of W₀) and a direction that LoRA
adapts; peft's `LoraConfig(use_dora=True)`. Shares LoRA's knobs (`lora_r`, `lora_alpha`,
`lora_targets`, `lora_train_projection`). With B = 0 at start it is exactly the pretrained model.
"""

from __future__ import annotations

from trainables.methods.lora import lora_phase
from trainables.methods.phase import Phase


def prepare(model, config) -> list[Phase]:
    return lora_phase(model, config, "dora", use_dora=True)

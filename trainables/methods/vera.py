"""VeRA (Kopiczko et al. 2024, "Vector-based Random Matrix Adaptation") through peft, on the image tower, plus the head.

ΔW = Λ_b · B · Λ_d · A: one pair of frozen random matrices A, B (rank `vera_r`, seeded by the
trial seed) shared by every wrapped linear, and per-layer trainable scaling vectors b and d;
peft's `VeraConfig`. b starts at 0, so the model starts exactly pretrained. Targets the
`lora_targets` linears.
"""

from __future__ import annotations

from trainables.errors import require
from trainables.methods.lora import target_regex
from trainables.methods.peft_tower import wrap
from trainables.methods.phase import Phase

OPTIONS = ("vera_r",)


def check(config) -> None:
    require("vera_r", config.vera_r >= 1, "an integer >= 1")


def prepare(model, config) -> list[Phase]:
    from peft import VeraConfig

    vera_config = VeraConfig(r=config.vera_r, target_modules=target_regex(config.lora_targets), vera_dropout=0.0,
                             projection_prng_key=config.seed)
    params = wrap(model, vera_config) + list(model.head.parameters())
    return [Phase("vera", params, config.lr, config.epochs, tunes_tower=True, parts=params)]

"""LoRA (Hu et al. 2022) through peft, on the image tower only, plus the head.

peft initialises B = 0, so the wrapped model starts exactly as the pretrained one. By default
the visual projection stays frozen (the "frozen projection" arm); `lora_train_projection: true`
also trains it, as full-weight parameters beside the low-rank deltas.
"""

from __future__ import annotations

from trainables.errors import one_of, require
from trainables.methods.peft_tower import LINEARS, linears_regex, wrap
from trainables.methods.phase import Phase

MODULES = LINEARS  # accepted `lora_targets`
OPTIONS = ("lora_r", "lora_alpha", "lora_targets", "lora_train_projection")


def check(config) -> None:
    require("lora_r", config.lora_r >= 1, "an integer >= 1")
    require("lora_alpha", config.lora_alpha > 0, "a number > 0")
    one_of("lora_targets", config.lora_targets, tuple(MODULES))
    require("lora_targets", bool(config.lora_targets), f"a non-empty list of {', '.join(MODULES)}")


def target_regex(targets: list[str]) -> str:
    """peft target_modules regex (full match) for the chosen image-tower linears."""
    return linears_regex(targets)


def lora_phase(model, config, name: str, use_dora: bool = False) -> list[Phase]:
    """LoRA (or DoRA) on `lora_targets` with `lora_r`/`lora_alpha`; the projection too if asked."""
    from peft import LoraConfig

    lora_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, use_dora=use_dora,
                             target_modules=target_regex(config.lora_targets), bias="none")
    params = wrap(model, lora_config)
    if config.lora_train_projection:
        params += list(model.clip_model().visual_projection.parameters())
    params += list(model.head.parameters())
    return [Phase(name, params, config.lr, config.epochs, tunes_tower=True, parts=params)]


def prepare(model, config) -> list[Phase]:
    return lora_phase(model, config, "lora")

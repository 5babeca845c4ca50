"""LoRA through peft, on the image tower only, plus the head.

The target regex names image-tower modules explicitly: peft's plain ["q_proj", "v_proj"]
would also adapt the text tower, and the frozen text tower is what zero-shot reads.
peft initialises B = 0, so the wrapped model starts exactly as the pretrained one.
"""

from __future__ import annotations

from trainables.errors import one_of, require
from trainables.methods.phase import Phase

# Accepted `lora_targets` and the image-tower linears they name.
MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
           "out": "self_attn.out_proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
OPTIONS = ("lora_r", "lora_alpha", "lora_targets")


def check(config) -> None:
    require("lora_r", config.lora_r >= 1, "an integer >= 1")
    require("lora_alpha", config.lora_alpha > 0, "a number > 0")
    one_of("lora_targets", config.lora_targets, tuple(MODULES))
    require("lora_targets", bool(config.lora_targets), f"a non-empty list of {', '.join(MODULES)}")


def target_regex(targets: list[str]) -> str:
    """peft target_modules regex (full match) for the chosen image-tower linears."""
    names = "|".join(MODULES[t].replace(".", r"\.") for t in targets)
    return rf".*vision_model\.encoder\.layers\.\d+\.({names})"


def prepare(model, config) -> list[Phase]:
    from peft import LoraConfig, get_peft_model

    lora_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                             target_modules=target_regex(config.lora_targets), bias="none")
    model.clip = get_peft_model(model.clip, lora_config)
    # peft's own list of what it added, not a match on parameter names.
    params = [p for p in model.clip.parameters() if p.requires_grad] + list(model.head.parameters())
    return [Phase("lora", params, config.lr, config.epochs, tunes_tower=True)]

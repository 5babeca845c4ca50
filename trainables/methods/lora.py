"""LoRA through peft, on the image tower only, plus the head.

The target regex names image-tower modules explicitly: peft's plain ["q_proj", "v_proj"]
would also adapt the text tower, and the frozen text tower is what zero-shot reads.
peft initialises B = 0, so the wrapped model starts exactly as the pretrained one.
"""

from __future__ import annotations

MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
           "out": "self_attn.out_proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def target_regex(targets: list[str]) -> str:
    """peft target_modules regex (full match) for the chosen image-tower linears."""
    names = "|".join(MODULES[t].replace(".", r"\.") for t in targets)
    return rf".*vision_model\.encoder\.layers\.\d+\.({names})"


def prepare(model, config):
    from peft import LoraConfig, get_peft_model

    from trainables.methods import Phase

    lora_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                             target_modules=target_regex(config.lora_targets), bias="none")
    model.clip = get_peft_model(model.clip, lora_config)
    params = [p for n, p in model.clip.named_parameters() if "lora_" in n] + list(model.head.parameters())
    return [Phase("lora", params, config.lr, config.epochs, tunes_tower=True)]

"""What the peft methods share: wrapping the CLIP model with a peft config aimed at the image tower only.

Every target regex names `vision_model.` modules explicitly: peft's plain module names
("q_proj", "layer_norm1") would also adapt the text tower, and the frozen text tower is what
zero-shot reads. The trained parameters are peft's own list (what it left requiring grad).
"""

from __future__ import annotations

import warnings

from torch import nn

# Image-tower linears by their short names (`lora_targets`, the IA3 targets).
LINEARS = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
           "out": "self_attn.out_proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def layer_regex(modules: list[str]) -> str:
    """peft target_modules regex (full match) for modules of every image-tower layer, e.g. `mlp.fc1`."""
    names = "|".join(m.replace(".", r"\.") for m in modules)
    return rf".*vision_model\.encoder\.layers\.\d+\.({names})"


def linears_regex(short_names: list[str]) -> str:
    return layer_regex([LINEARS[t] for t in short_names])


def wrap(model, peft_config) -> list[nn.Parameter]:
    """Wrap `model.clip` with peft in place; return the parameters peft added and left trainable."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft probes `is_gradient_checkpointing`, which transformers 5 deprecates with a FutureWarning
        # on every wrap: noise in every peft trial's output, about code that is not ours.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        model.clip = get_peft_model(model.clip, peft_config)
    return [p for p in model.clip.parameters() if p.requires_grad]

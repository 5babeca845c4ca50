"""Weight drift of the image tower: how far tuning has moved its effective weights from the pretrained ones.

    drift = WeightDrift(model)     # on the pretrained model, before a method wraps it
    drift(model)                   # ‖W − W₀‖_F / ‖W₀‖_F, later

Definition. W ranges over the image tower (`vision_model`) and its projection
(`visual_projection`), all parameters flattened into one vector; ‖·‖_F is the Frobenius
(Euclidean) norm of that vector; W₀ is the pretrained value.
- LoRA counts through its effective weights: a wrapped linear contributes W₀ + scale·B·A
  (peft's `get_delta_weight`), so a LoRA model drifts exactly as much as its merged copy.
- Adapters count through the parameters they add, whose pretrained value is taken as 0:
  they enter the numerator only.
- The head and the text tower are not part of W (the text tower is frozen in every method).
"""

from __future__ import annotations

import torch
from torch import nn


def tower(clip: nn.Module) -> list[nn.Module]:
    """The image tower and its projection: what weight drift (and WiSE-FT) measure and move."""
    return [clip.vision_model, clip.visual_projection]


def lora_layers(parts: list[nn.Module]) -> list[nn.Module]:
    """peft LoRA layers inside `parts` (each has `lora_A`, `lora_B`, `scaling` per adapter name)."""
    return [m for part in parts for m in part.modules()
            if hasattr(m, "get_delta_weight") and hasattr(m, "base_layer") and hasattr(m, "lora_A")]


def lora_parameter_ids(layers: list[nn.Module]) -> set[int]:
    """Ids of LoRA's own A/B parameters in `layers`."""
    return {id(p) for m in layers for a in m.lora_A
            for p in (*m.lora_A[a].parameters(), *m.lora_B[a].parameters())}


def _lora_deltas(parts: list[nn.Module]) -> tuple[dict[int, torch.Tensor], set[int]]:
    """{id(base weight): scale·B·A summed over active adapters} and the ids of LoRA's own A/B parameters."""
    layers = lora_layers(parts)
    deltas = {}
    for module in layers:
        active = [a for a in module.active_adapters if a in module.lora_A]
        if active and not getattr(module, "merged", False):
            deltas[id(module.base_layer.weight)] = sum(module.get_delta_weight(a) for a in active)
    return deltas, lora_parameter_ids(layers)


class WeightDrift:
    """Remembers the pretrained image tower; called on a (possibly wrapped) model, returns ‖W − W₀‖_F / ‖W₀‖_F."""

    def __init__(self, model: nn.Module):
        params = [p for part in tower(model.clip_model()) for p in part.parameters()]
        self.pretrained = {id(p): p.detach().clone() for p in params}
        self.norm = float(torch.sqrt(sum(w.double().pow(2).sum() for w in self.pretrained.values())))

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        parts = tower(model.clip_model())
        deltas, lora_params = _lora_deltas(parts)
        total = torch.zeros((), dtype=torch.float64)
        seen = set()
        for part in parts:
            for p in part.parameters():
                if id(p) in seen or id(p) in lora_params:
                    continue
                seen.add(id(p))
                w0 = self.pretrained.get(id(p))
                # Parameters the pretrained model did not have (adapters) start from 0.
                diff = p.detach() if w0 is None else p.detach() - w0.to(p.device)
                if id(p) in deltas:
                    diff = diff + deltas[id(p)].to(diff.dtype)
                total += diff.double().pow(2).sum().cpu()
        return float(total.sqrt()) / self.norm if self.norm > 0 else 0.0

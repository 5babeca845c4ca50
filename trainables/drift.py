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


def _tower(clip: nn.Module) -> list[nn.Module]:
    return [clip.vision_model, clip.visual_projection]


def _lora_deltas(tower: list[nn.Module]) -> tuple[dict[int, torch.Tensor], set[int]]:
    """{id(base weight): scale·B·A summed over active adapters} and the ids of LoRA's own A/B parameters."""
    deltas, lora_params = {}, set()
    for part in tower:
        for module in part.modules():
            if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
                continue
            active = [a for a in module.active_adapters if a in module.lora_A]
            lora_params.update(id(p) for a in module.lora_A for p in (*module.lora_A[a].parameters(),
                                                                       *module.lora_B[a].parameters()))
            if active and not getattr(module, "merged", False):
                deltas[id(module.base_layer.weight)] = sum(module.get_delta_weight(a) for a in active)
    return deltas, lora_params


class WeightDrift:
    """Remembers the pretrained image tower; called on a (possibly wrapped) model, returns ‖W − W₀‖_F / ‖W₀‖_F."""

    def __init__(self, model: nn.Module):
        params = [p for part in _tower(model.clip_model()) for p in part.parameters()]
        self.pretrained = {id(p): p.detach().clone() for p in params}
        self.norm = float(torch.sqrt(sum(w.double().pow(2).sum() for w in self.pretrained.values())))

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        tower = _tower(model.clip_model())
        deltas, lora_params = _lora_deltas(tower)
        total = torch.zeros((), dtype=torch.float64)
        seen = set()
        for part in tower:
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

"""Weight drift of the image tower: how far tuning has moved its effective weights from the pretrained ones.

    drift = WeightDrift(model)     # on the pretrained model, before a method wraps it
    drift(model)                   # ‖W − W₀‖_F / ‖W₀‖_F, later

Definition. W ranges over the image tower (`vision_model`) and its projection
(`visual_projection`), all parameters flattened into one vector; ‖·‖_F is the Frobenius
(Euclidean) norm of that vector; W₀ is the pretrained value.
- peft methods (LoRA, DoRA, VeRA, (IA)³, LayerNorm tuning) count through their effective
  weights: a wrapped layer contributes the weights peft's own `merge()` writes into a copy of it
  (W₀ + scale·B·A for LoRA), so a peft model drifts exactly as much as its merged copy.
- Adapters and depth-wise shortcuts count through the parameters they add, whose pretrained value is taken as 0:
  they enter the numerator only.
- The head and the text tower are not part of W (the text tower is frozen in every method).
"""

from __future__ import annotations

import copy

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


def _peft_effective(parts: list[nn.Module]) -> tuple[dict[int, torch.Tensor], set[int]]:
    """{id(base parameter): its merged value} for every peft-wrapped layer, and the ids of peft's own parameters.

    Each wrapped layer is copied and merged by peft (`merge()`), so whatever the method (additive,
    multiplicative or a swapped-in copy) the effective weights are peft's, not a formula of ours."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    effective, peft_params = {}, set()
    for part in parts:
        for module in part.modules():
            if not isinstance(module, BaseTunerLayer) or getattr(module, "merged", False):
                continue
            base = module.get_base_layer()
            peft_params.update(id(p) for p in module.parameters())
            merged = copy.deepcopy(module)
            merged.merge()
            merged_params = dict(merged.get_base_layer().named_parameters())
            effective.update({id(p): merged_params[name].detach() for name, p in base.named_parameters()})
    return effective, peft_params


class WeightDrift:
    """Remembers the pretrained image tower; called on a (possibly wrapped) model, returns ‖W − W₀‖_F / ‖W₀‖_F."""

    def __init__(self, model: nn.Module):
        params = [p for part in tower(model.clip_model()) for p in part.parameters()]
        self.pretrained = {id(p): p.detach().clone() for p in params}
        self.norm = float(torch.sqrt(sum(w.double().pow(2).sum() for w in self.pretrained.values())))

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        parts = tower(model.clip_model())
        effective, peft_params = _peft_effective(parts)
        total = torch.zeros((), dtype=torch.float64)
        seen = set()
        for part in parts:
            for p in part.parameters():
                if id(p) in seen or (id(p) in peft_params and id(p) not in effective):
                    continue
                seen.add(id(p))
                w0 = self.pretrained.get(id(p))
                value = effective.get(id(p), p).detach()
                # Parameters the pretrained model did not have (adapters) start from 0.
                diff = value if w0 is None else value - w0.to(value.device)
                total += diff.double().pow(2).sum().cpu()
        return float(total.sqrt()) / self.norm if self.norm > 0 else 0.0

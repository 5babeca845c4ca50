"""Fine-tuning methods: one file each, registered in one METHODS dict.

A method takes the classifier and the trial config, may wrap the image tower (LoRA,
adapters), and returns its phases: which parameters train, at what learning rate, for how
many epochs. GTA is not a method but an extra loss that composes with any of them
(`gta_lambda > 0`); `build_phases` attaches it to every phase that tunes the image tower.
The trial loop only ever sees phases, never a method name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainables.methods import adapter, ft, lora, lp, lpft

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def cross_entropy(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor):
    """The task loss: cross-entropy of the classifier's logits. Returns (loss, extra logs)."""
    return F.cross_entropy(model(pixels), labels), {}


@dataclass
class Phase:
    """A stretch of training with one optimiser over a fixed set of parameters."""

    name: str
    params: list[nn.Parameter]
    lr: float
    epochs: int
    tunes_tower: bool  # whether image-tower weights (or adapters inside it) change in this phase
    loss: LossFn = field(default=cross_entropy)


METHODS: dict[str, Callable] = {
    "ft": ft.prepare,
    "lp": lp.prepare,
    "lpft": lpft.prepare,
    "lora": lora.prepare,
    "adapter": adapter.prepare,
}


def build_phases(model: nn.Module, config, source_tower: nn.Module | None = None) -> list[Phase]:
    """Apply config.method to the model and, with gta_lambda > 0, add the GTA penalty to tower-tuning phases."""
    from trainables.methods import gta

    phases = METHODS[config.method](model, config)
    if config.gta_lambda > 0:
        penalty = gta.GTAPenalty(source_tower, config.gta_lambda, config.gta_layers)
        for phase in phases:
            if phase.tunes_tower:
                phase.loss = penalty.wrap(phase.loss)
    return phases

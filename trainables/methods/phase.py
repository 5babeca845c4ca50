"""What a method returns: phases, each a stretch of training with one optimiser over fixed parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

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

"""What a method returns: phases, each a stretch of training with one optimiser over fixed parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

# loss(model, pixels, labels, boxes=None, ids=None) -> (loss, extra logs); boxes [B, 4] when the data has
# them; ids the batch's images' stable ids when the same id always brings the same pixels (no augmentation),
# else None: what per-image caches key on.
LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def cross_entropy(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor | None = None,
                  ids: torch.Tensor | None = None):
    """The task loss: cross-entropy of the classifier's logits (boxes and ids unused). Returns (loss, extra logs)."""
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
    # The trained parameters exported as the trial's small trained parts; None = those the pretrained
    # checkpoint does not hold (head, LoRA, adapters). Methods that train a few pretrained tensors name them.
    parts: list[nn.Parameter] | None = None

"""In-memory image splits (preprocessed pixels, labels, optional boxes) and the task holding three of them;
batching and augmentation.

Images are stored once, already resized and centre-cropped by the model's own image
processor, as uint8 [N, 3, H, W]; normalisation and training augmentation happen per batch
in plain torch, so preprocessing is never repeated across epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Split:
    """One split of a labelled image dataset, ready for the model."""

    pixels: torch.Tensor  # uint8 [N, 3, H, W], resized + centre-cropped
    labels: torch.Tensor  # int64 [N]
    boxes: torch.Tensor | None = None  # float [N, 4] (x0, y0, x1, y1) in the cropped pixel frame

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> "Split":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        boxes = None if self.boxes is None else self.boxes[idx]
        return Split(self.pixels[idx], self.labels[idx], boxes)

    def batches(self, batch_size: int, shuffle_seed: int | None = None):
        """Yield (uint8 pixels, labels, index) batches; shuffled deterministically when a seed is given."""
        n = len(self)
        if shuffle_seed is None:
            order = torch.arange(n)
        else:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield self.pixels[idx], self.labels[idx], idx


@dataclass
class TaskData:
    """A classification task ready for a trial: class names, prompt templates, and its three splits."""

    name: str
    classes: tuple[str, ...]
    templates: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    augment: bool  # random resized crop + flip while training (off where it would change the label)


def balanced_indices(labels: np.ndarray, per_class_fraction: float | None = None, total: int | None = None,
                     seed: int = 0) -> np.ndarray:
    """A class-balanced subset: either a fraction of every class, or `total` items spread evenly over classes."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen = []
    for i, c in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        if per_class_fraction is not None:
            k = max(1, int(round(per_class_fraction * len(members))))
        else:
            k = total // len(classes) + (1 if i < total % len(classes) else 0)
        chosen.append(members[:k])
    return np.sort(np.concatenate(chosen))


def normalise(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float, scaled to [0, 1] and normalised per channel."""
    return (pixels.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def augment(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.6, 1.0),
            flip: bool = True) -> torch.Tensor:
    """Random resized crop (area fraction in `scale`, square) and horizontal flip, per sample, on float images."""
    b = x.shape[0]
    side = torch.sqrt(torch.empty(b).uniform_(*scale, generator=generator))
    cx = (torch.rand(b, generator=generator) * 2 - 1) * (1 - side)
    cy = (torch.rand(b, generator=generator) * 2 - 1) * (1 - side)
    sign = torch.ones(b)
    if flip:
        sign = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = side * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = side, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

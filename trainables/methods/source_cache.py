"""The frozen source tower's [CLS] logits per training image, computed once where inputs repeat.

Without augmentation an image's pixels are the same every epoch and the source tower never
trains, so its [CLS]->token logits for that image never change: the first epoch computes
them (one no-grad forward over the batch's images not yet held) and later epochs read them
back, which takes the regularisers' extra forward off every step after the first epoch.
Rows stay on the device they were computed on, up to `limit_mib` in all; images past the
bound are recomputed every step, and the log says so once. Batches without stable image
ids (augmented inputs) are always recomputed.
"""

from __future__ import annotations

import sys
from typing import Callable

import torch

# pixels [B, 3, H, W] -> source logits [B, L, H, T] over every layer of the tower
SourceForward = Callable[[torch.Tensor], torch.Tensor]


class SourceLogitCache:
    """Per-image source logits keyed by the image's id in its split; `limit_mib` 0 turns caching off."""

    def __init__(self, limit_mib: float):
        self.limit_bytes = int(limit_mib * 2**20)
        self.rows: dict[int, torch.Tensor] = {}
        self.used_bytes = 0
        self.full = False

    def logits(self, pixels: torch.Tensor, ids: torch.Tensor | None, forward: SourceForward) -> torch.Tensor:
        """[B, L, H, T] source logits of the batch: held rows read back, the others computed by `forward`
        (on only the images that are missing) and kept while the bound allows."""
        if ids is None or self.limit_bytes == 0:
            return forward(pixels)
        keys = ids.tolist()
        missing = [i for i, key in enumerate(keys) if key not in self.rows]
        if not missing:
            return torch.stack([self.rows[key] for key in keys])
        fresh = forward(pixels if len(missing) == len(keys) else pixels[missing])
        for row, i in zip(fresh, missing):
            self._keep(keys[i], row)
        if len(missing) == len(keys):
            return fresh
        slot = {i: j for j, i in enumerate(missing)}
        return torch.stack([fresh[slot[i]] if i in slot else self.rows[key] for i, key in enumerate(keys)])

    def _keep(self, key: int, row: torch.Tensor) -> None:
        size = row.numel() * row.element_size()
        if self.used_bytes + size > self.limit_bytes:
            if not self.full:
                self.full = True
                print(f"driftlab: the source tower's cached [CLS] logits reached source_cache_mib "
                      f"({self.limit_bytes / 2**20:g} MiB, {len(self.rows)} images); the other images' are "
                      "recomputed every step", file=sys.stderr)
            return
        # A copy, not a view: a view would keep the whole batch's tensor alive.
        self.rows[key] = row.detach().clone()
        self.used_bytes += size

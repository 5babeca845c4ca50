"""What regularisers share: one frozen copy of the pretrained tower and one attention capture per step.

`regularised(loss, penalties, source, cache)` wraps a phase's loss: the task forward runs inside
one `AttentionCapture` of the tuned model, then each penalty reads a `StepAttention` (the tuned
tower's [CLS] logits from that forward, the source tower's from one extra no-grad forward made
on first use, or from the `SourceLogitCache` when the batch's images repeat, and the batch's
object boxes) and adds its term, logged as `train/<name>_penalty`. A penalty is built once per
trial by its module's `penalty(config, setup)`, where `setup` (`Setup`) says what the tower and
the data look like.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from trainables import keys
from trainables.attention import AttentionCapture
from trainables.methods.phase import LossFn
from trainables.methods.source_cache import SourceLogitCache


@dataclass(frozen=True)
class Setup:
    """What a regulariser may need to know before training: the tower's shape and whether the data has boxes."""

    num_layers: int
    grid: tuple[int, int]  # patch rows, columns
    patch_size: int  # pixels per patch side
    has_boxes: bool


class SourceTower(nn.Module):
    """A frozen copy of the pretrained image tower, named like CLIPModel's (`vision_model.…`)."""

    def __init__(self, vision_model: nn.Module):
        super().__init__()
        self.vision_model = copy.deepcopy(vision_model).eval().requires_grad_(False)


class StepAttention:
    """One training step's [CLS]->patch logits, [L, B, H, N] over the chosen layers (None = all), and its boxes."""

    def __init__(self, tuned: AttentionCapture, source: SourceTower | None, source_capture: AttentionCapture | None,
                 cache: SourceLogitCache | None, pixels: torch.Tensor, boxes: torch.Tensor | None = None,
                 ids: torch.Tensor | None = None):
        self._tuned, self._source, self._source_capture = tuned, source, source_capture
        self._cache, self._pixels, self._ids = cache, pixels, ids
        self.boxes = boxes  # [B, 4] (x0, y0, x1, y1) in pixels, or None
        self._source_logits: torch.Tensor | None = None  # [B, L, H, T], every layer

    def tuned(self, layers: list[int] | None = None) -> torch.Tensor:
        """The tuned tower's logits from the task forward (gradients flow)."""
        return torch.stack(self._tuned.cls_logits(layers))[..., 1:]

    @torch.no_grad()
    def source(self, layers: list[int] | None = None) -> torch.Tensor:
        """The frozen pretrained tower's logits on the same pixels (at most one forward per step, however
        many ask; none when the cache holds the batch)."""
        if self._source_logits is None:
            self._source_logits = self._cache.logits(self._pixels, self._ids, self._forward)
        chosen = self._source_logits if layers is None else self._source_logits[:, layers]
        return chosen.transpose(0, 1)[..., 1:]

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        with self._source_capture:
            self._source.vision_model(pixel_values=pixels)
        return torch.stack(self._source_capture.cls_logits(), dim=1)


Penalty = Callable[[StepAttention], torch.Tensor]


def regularised(loss: LossFn, penalties: dict[str, Penalty], source: SourceTower | None,
                cache: SourceLogitCache | None) -> LossFn:
    """`loss` plus every penalty, each logged under `train/<name>_penalty`. `source` (and `cache`) may be
    None when no penalty reads the pretrained tower."""
    captures: dict[int, AttentionCapture] = {}
    source_capture = None if source is None else AttentionCapture(source)

    def total(model, pixels, labels, boxes=None, ids=None):
        capture = captures.get(id(model))
        if capture is None:  # hooks are registered per forward; the capture object is built once per model
            capture = captures[id(model)] = AttentionCapture(model)
        with capture:
            value, logs = loss(model, pixels, labels, boxes=boxes, ids=ids)
        step = StepAttention(capture, source, source_capture, cache, pixels, boxes, ids)
        logs = dict(logs)
        for name, penalty in penalties.items():
            term = penalty(step)
            value = value + term
            logs[keys.penalty(name)] = term.detach()
        return value, logs

    return total

"""Best-validation selection: the epoch with the highest `val/acc`, what was measured there, and its weights.

Studies report a fine-tuned model at its best validation epoch, not its last; a trial reports
both, the best under `best/` (`best/epoch`, `best/test/acc`, `best/zeroshot/<task>/retention`,
...). Ties keep the earlier epoch. Epoch 0 (the pretrained tower with an untrained head) is not
a candidate. The weights are CPU copies of what the method trains, so the selected model can
be exported and a resumed trial keeps its selection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from trainables import keys


@dataclass
class BestEpoch:
    epoch: int = 0
    val: float = -math.inf
    metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def offer(self, epoch: int, metrics: dict[str, float], weights: Callable[[], dict[str, torch.Tensor]]) -> bool:
        """Take this epoch if its val/acc beats the best so far; `weights` is called only then."""
        val = metrics.get(keys.VAL_ACC)
        if epoch < 1 or val is None or not math.isfinite(val) or val <= self.val:
            return False
        self.epoch, self.val = epoch, float(val)
        self.metrics = {k: float(v) for k, v in metrics.items() if keys.measured(k)}
        self.weights = weights()
        return True

    def report(self) -> dict[str, float]:
        """`best/epoch` and every measurement of the best epoch under `best/`."""
        return {keys.BEST_EPOCH: self.epoch, **{keys.best(k): v for k, v in self.metrics.items()}}

    def state(self) -> dict:
        return {"epoch": self.epoch, "val": self.val, "metrics": self.metrics, "weights": self.weights}

    @classmethod
    def from_state(cls, state: dict | None) -> "BestEpoch":
        return cls(**state) if state else cls()

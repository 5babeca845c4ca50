"""Drift signals: what predictors, early warning, selection and polarity read off each trial.

A signal is a table column (a metric key, or `lr`) with a transform (as is, |x|, log10) and
an orientation: +1 when larger means further from the pretrained model (weight and embedding
drift, |Δ| of an attention metric, log10 lr), -1 when larger means closer (CKA), 0 when its
sign has no declared meaning (a signed Δ, the train loss). Where a family needs an
orientation, a 0 signal takes the one its correlation with the target shows, and the
report says so (an optimistic reading). Orientations of metric keys come from
`trainables.keys.drift_direction`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainables import keys

LR = "lr"
_TRANSFORMS = {"identity": lambda v: v, "abs": np.abs, "log10": np.log10}


@dataclass(frozen=True)
class Signal:
    name: str  # as shown: `drift/embedding`, `|attn/delta_entropy_pct|`, `log10(lr)`
    column: str  # the table column it reads
    transform: str = "identity"  # identity | abs | log10
    direction: int = 0  # +1 larger = more drift, -1 larger = less, 0 = from the data

    def values(self, rows: pd.DataFrame, epoch: int | None = None) -> np.ndarray:
        """The signal per trial; at `epoch` it reads the per-epoch column (lr is known from the start)."""
        column = self.column if epoch is None or self.column == LR else keys.at_epoch(self.column, epoch)
        if column not in rows.columns:
            return np.full(len(rows), np.nan)
        raw = pd.to_numeric(rows[column], errors="coerce").to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _TRANSFORMS[self.transform](raw)

    def epochs(self, rows: pd.DataFrame) -> set[int] | None:
        """Epochs at which the table holds this signal; None for lr, known before the first."""
        if self.column == LR:
            return None
        return {split[0] for c in rows.columns if (split := keys.split_epoch(str(c))) and split[1] == self.column}


def signal_for(column: str, absolute: bool = False) -> Signal:
    """The signal reading `column` (`lr` reads as log10 lr), its orientation from the key module."""
    if column == LR:
        return Signal("log10(lr)", LR, "log10", 1)
    direction = keys.drift_direction(column)
    if absolute:
        return Signal(f"|{column}|", column, "abs", 1)
    return Signal(column, column, "identity", direction or 0)


def parse_signal_name(name: str) -> tuple[str, bool]:
    """'|key|' -> (key, True); 'log10(lr)' -> ('lr', False); 'key' -> (key, False)."""
    name = name.strip()
    if name.startswith("|") and name.endswith("|") and len(name) > 2:
        return name[1:-1], True
    return (LR, False) if name in ("log10(lr)", LR) else (name, False)


def _varies(table: pd.DataFrame, column: str) -> bool:
    return column in table.columns and pd.to_numeric(table[column], errors="coerce").nunique() > 1


def last_layers(columns: list[str]) -> dict[str, int]:
    """{attention metric: its deepest layer with a Δ% column}."""
    last: dict[str, int] = {}
    for column in columns:
        parsed = keys.parse(column)
        if parsed and parsed.kind == "attn_delta" and parsed.layer is not None:
            last[parsed.metric] = max(parsed.layer, last.get(parsed.metric, -1))
    return last


def default_signals(table: pd.DataFrame, target: str | None) -> list[Signal]:
    """Every drift signal the table has, read at the target's point (`best/` target -> `best/` signals):
    weight and embedding drift, CKA, signed and absolute Δ% of each attention metric (mean and
    deepest layer), the final train loss, and log10 lr."""
    parsed_target = keys.parse(target) if target else None
    best = bool(parsed_target and parsed_target.best)
    columns = [str(c) for c in table.columns if _varies(table, str(c))]
    last = last_layers(columns)
    found: list[Signal] = []
    for column in columns:
        parsed = keys.parse(column)
        if parsed is None or parsed.best != best:
            continue
        if parsed.kind == "attn_delta" and parsed.layer in (None, last.get(parsed.metric)):
            found += [signal_for(column), signal_for(column, absolute=True)]
        elif (parsed.kind == "cka" and parsed.layer is None) or keys.drift_direction(column) == 1:
            found.append(signal_for(column))
    loss = keys.best(keys.TRAIN_LOSS) if best else keys.TRAIN_LOSS
    found += [signal_for(loss)] if _varies(table, loss) else []
    found += [signal_for(LR)] if _varies(table, LR) else []
    order = {"fixed": 0, "cka": 1, "attn_delta": 2}  # drift first, then CKA, attention, loss, lr
    return sorted(found, key=lambda s: order.get(getattr(keys.parse(s.column), "kind", ""), 3))

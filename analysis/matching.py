"""Which trials of two methods are comparable cell by cell.

Two methods are matched on every varying grid parameter (lr, seed, data_fraction, ...)
that both of them set. A parameter only one method sets and varies (gta_lambda for gta,
say) splits that method into arms, e.g. `gta[gta_lambda=0.1]`, each matched separately:
averaging over it would blur the effect the sweep was built to measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Iterator

import pandas as pd

from analysis.table import varying_parameters


@dataclass
class MethodPair:
    a: str  # label of the first arm (method, maybe with its own parameters)
    b: str
    rows_a: pd.DataFrame
    rows_b: pd.DataFrame
    keys: list[str]  # shared grid keys the cells are matched on; empty = cannot match


def fmt_value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _arms(rows: pd.DataFrame, method: str, own: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    if not own:
        yield method, rows
        return
    for values, sub in rows.groupby(own, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k}={fmt_value(v)}" for k, v in zip(own, values))
        yield f"{method}[{label}]", sub


def method_pairs(rows: pd.DataFrame) -> Iterator[MethodPair]:
    """Every pair of arms of different methods within one dataset's completed trials."""
    keys = varying_parameters(rows, exclude=("dataset", "method"))
    methods = sorted(rows["method"].unique())
    for ma, mb in combinations(methods, 2):
        ra, rb = rows[rows["method"] == ma], rows[rows["method"] == mb]
        shared = [k for k in keys if ra[k].notna().any() and rb[k].notna().any()]
        own_a = [k for k in keys if k not in shared and ra[k].nunique() > 1]
        own_b = [k for k in keys if k not in shared and rb[k].nunique() > 1]
        for label_a, sub_a in _arms(ra, ma, own_a):
            for label_b, sub_b in _arms(rb, mb, own_b):
                yield MethodPair(label_a, label_b, sub_a, sub_b, shared)


def matched_cells(pair: MethodPair, metric: str) -> pd.DataFrame:
    """Columns keys + a + b: one row per cell present in both arms with the metric set.

    Repeated trials of the same cell (a rerun, say) are averaged so each cell counts once.
    """
    if not pair.keys:
        return pd.DataFrame(columns=["a", "b"])
    cells = []
    for side, rows in (("a", pair.rows_a), ("b", pair.rows_b)):
        # Match on the keys' text so a missing value matches a missing value (NaN != NaN).
        keyed = rows[pair.keys].astype(str).assign(**{side: rows[metric]})
        cells.append(keyed.groupby(pair.keys)[side].mean())
    merged = pd.concat(cells, axis=1, join="inner").dropna(subset=["a", "b"])
    return merged.reset_index()

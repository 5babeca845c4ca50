"""Which trials of two arms are comparable cell by cell.

Within one stratum (every other varying factor already held fixed, analysis/strata.py) two
arms are matched on the factors a paired design replicates over, the learning rate and the
seed, where they vary and both arms set them: a cell is one (lr, seed) both arms ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Iterator

import pandas as pd

from analysis.strata import ARM, LR, SEED

MATCH_KEYS: tuple[str, ...] = (LR, SEED)


@dataclass
class MethodPair:
    a: str  # label of the first arm (method, maybe with its knobs)
    b: str
    rows_a: pd.DataFrame
    rows_b: pd.DataFrame
    keys: list[str]  # grid keys the cells are matched on; empty = cannot match


def arm_pairs(rows: pd.DataFrame) -> Iterator[MethodPair]:
    """Every pair of arms (sorted labels) of one stratum's trials, with the keys they match on."""
    keys = [k for k in MATCH_KEYS if k in rows.columns and rows[k].astype(str).nunique() > 1]
    for a, b in combinations(sorted(rows[ARM].astype(str).unique()), 2):
        ra, rb = rows[rows[ARM] == a], rows[rows[ARM] == b]
        shared = [k for k in keys if ra[k].notna().any() and rb[k].notna().any()]
        yield MethodPair(a, b, ra, rb, shared)


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

"""paired and unpaired: two arms compared within a stratum.

- paired: arms matched cell by cell (same lr and seed) and compared with an exact sign-flip
  test on the per-cell differences a - b;
- unpaired: arm pairs with fewer than MIN_MATCHED_CELLS matched cells, compared as two
  independent samples (group labels permuted).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pandas as pd

from analysis.families.common import Family, Inputs, Output, row, safe_ratio
from analysis.matching import MethodPair, arm_pairs, matched_cells
from analysis.permutation import bootstrap_ci, mean, mean_difference, sign_flip_test, two_sample_test
from analysis.strata import ARM, LR, SEED, stratify

SPANS = (ARM, LR, SEED)
# Pairs with fewer matched cells than this are compared as unpaired samples instead.
MIN_MATCHED_CELLS = 2


def _paired_rows(strata: str, stratum: pd.DataFrame, pair: MethodPair, metrics: list[str]) -> Iterator[dict]:
    for metric in metrics:
        cells = matched_cells(pair, metric)
        if len(cells) < MIN_MATCHED_CELLS:
            continue
        d = (cells["a"] - cells["b"]).to_numpy(dtype=float)
        if not d.any():  # identical arms carry no evidence and would only inflate Holm's m
            continue
        result = sign_flip_test(d)
        sd = float(np.std(d, ddof=1))
        yield row("paired", strata, stratum, metric, len(d), float(d.mean()), result,
                  effect_size=safe_ratio(float(d.mean()), sd), ci=bootstrap_ci((d,), mean), a=pair.a, b=pair.b,
                  matched_on=" and ".join(pair.keys))  # for the report's sentences


def run_paired(inputs: Inputs) -> Output:
    rows = []
    for strata, stratum in stratify(inputs.table, SPANS):
        for pair in arm_pairs(stratum):
            rows.extend(_paired_rows(strata, stratum, pair, inputs.metrics))
    return Output(rows)


def _unpaired_rows(strata: str, stratum: pd.DataFrame, pair: MethodPair, metrics: list[str]) -> Iterator[dict]:
    for metric in metrics:
        xa = pair.rows_a[metric].dropna().to_numpy(float)
        xb = pair.rows_b[metric].dropna().to_numpy(float)
        result = two_sample_test(xa, xb)
        if result is None:
            continue
        dof = len(xa) + len(xb) - 2
        pooled = math.sqrt(((len(xa) - 1) * np.var(xa, ddof=1) + (len(xb) - 1) * np.var(xb, ddof=1)) / dof)
        effect = float(xa.mean() - xb.mean())
        yield row("unpaired", strata, stratum, metric, len(xa) + len(xb), effect, result,
                  effect_size=safe_ratio(effect, pooled), ci=bootstrap_ci((xa, xb), mean_difference),
                  a=pair.a, b=pair.b)


def run_unpaired(inputs: Inputs) -> Output:
    """Arm pairs that match in fewer than MIN_MATCHED_CELLS cells on every metric."""
    rows = []
    for strata, stratum in stratify(inputs.table, SPANS):
        for pair in arm_pairs(stratum):
            if all(len(matched_cells(pair, m)) < MIN_MATCHED_CELLS for m in inputs.metrics):
                rows.extend(_unpaired_rows(strata, stratum, pair, inputs.metrics))
    return Output(rows)


PAIRED = Family("paired", SPANS, run_paired, "two arms at matched lr and seed: exact sign-flip test of a − b")
UNPAIRED = Family("unpaired", SPANS, run_unpaired, "two arms without matched cells: two-sample permutation test")

"""dose: Spearman ρ of each metric against a dose, within a stratum (arm and all else fixed).

Doses are the learning rate (as log10, it acts multiplicatively) and every regulariser
weight `<name>_lambda` that varies. A λ dose is read within its method, the λ left out of
the arm: `ft` at λ 0, 0.1, 0.3 is one dose series.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd

from analysis.families.common import Family, Inputs, Output, arm_of, spearman_row
from analysis.strata import LR, SEED, stratify
from analysis.table import varying_parameters


def dose_factors(table: pd.DataFrame) -> Iterator[tuple[str, str, Callable[[np.ndarray], np.ndarray]]]:
    """(column, label in column `a`, transform) of every varying dose."""
    varying = varying_parameters(table)
    if LR in varying:
        yield LR, "log10(lr)", np.log10
    for column in varying:
        if column.endswith("_lambda"):
            yield column, column, lambda v: v


def run_dose(inputs: Inputs) -> Output:
    rows = []
    for column, label, transform in dose_factors(inputs.table):
        for strata, stratum in stratify(inputs.table, (column, SEED)):
            raw = pd.to_numeric(stratum[column], errors="coerce").to_numpy(float)
            if np.unique(raw[np.isfinite(raw)]).size < 2:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                x = transform(raw)
            for metric in inputs.metrics:
                found = spearman_row("dose", strata, stratum, metric, x, stratum[metric].to_numpy(float),
                                     method=arm_of(stratum), a=label)
                rows.extend([found] if found else [])
    return Output(rows)


DOSE = Family("dose", (LR, SEED), run_dose,
              "Spearman ρ of a metric against log10(lr) or a λ, every other factor fixed")

"""The cell table: one row per grid cell (every varying parameter but the seed), seeds pooled.

It is the descriptive companion of the tests: n trials, mean and sd of every metric.
"""

from __future__ import annotations

import pandas as pd

from analysis.table import varying_parameters


def cell_keys(table: pd.DataFrame) -> list[str]:
    """dataset, method, then every other varying parameter except seed (seeds are replicates)."""
    return ["dataset", "method"] + varying_parameters(table, exclude=("dataset", "method", "seed"))


def cell_table(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Columns: the cell keys, n, then `<metric> mean` and `<metric> sd` for each metric."""
    keys = cell_keys(table)
    if table.empty:
        return pd.DataFrame(columns=keys + ["n"] + [f"{m} {s}" for m in metrics for s in ("mean", "sd")])
    grouped = table.groupby(keys, dropna=False, sort=True)
    means = grouped[metrics].mean().add_suffix(" mean")
    sds = grouped[metrics].std(ddof=1).add_suffix(" sd")  # NaN for a single seed, on purpose
    order = ["n"] + [f"{m} {s}" for m in metrics for s in ("mean", "sd")]
    # copy() consolidates the blocks, so reset_index does not insert into a fragmented frame.
    return pd.concat([grouped.size().rename("n"), means, sds], axis=1)[order].copy().reset_index()

"""The Pareto front of a multi-objective sweep: trials no other trial beats on every objective."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures import plot_pareto
from analysis.options import AnalysisInputError, parse_pareto
from analysis.table import split_completed


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """values [n, k], larger is better in every column -> bool [n], True = non-dominated."""
    ge = (values[None, :, :] >= values[:, None, :]).all(-1)  # ge[i, j]: j at least as good as i
    gt = (values[None, :, :] > values[:, None, :]).any(-1)
    return ~(ge & gt).any(1)


def pareto(table: pd.DataFrame, objectives: dict[str, str],
           path: str | Path | None = None) -> tuple[pd.DataFrame, Path | None]:
    """(front rows per dataset among completed trials with every objective, figure path if `path` given).

    objectives maps metric -> 'max' or 'min'; at least two are needed.
    """
    objectives = parse_pareto(objectives, "--pareto")
    missing = [m for m in objectives if m not in table.columns]
    if missing:
        raise AnalysisInputError(f"--pareto: no metric column {missing[0]!r}; "
                                 f"available: {', '.join(map(str, table.columns))}")
    completed, _ = split_completed(table)
    rows = completed.dropna(subset=list(objectives)).reset_index(drop=True)
    signs = np.array([1.0 if sense == "max" else -1.0 for sense in objectives.values()])
    mask = np.zeros(len(rows), bool)
    # Per dataset: accuracies on different datasets are not comparable, so neither are fronts.
    for _, index in rows.groupby("dataset").groups.items():
        mask[index] = pareto_mask(rows.loc[index, list(objectives)].to_numpy(float) * signs)
    front = rows[mask].sort_values(["dataset", list(objectives)[0]]).reset_index(drop=True)
    figure = plot_pareto(rows, front, objectives, Path(path)) if path is not None and len(rows) else None
    return front, figure

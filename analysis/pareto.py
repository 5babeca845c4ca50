"""The Pareto front of a multi-objective sweep: trials no other trial beats on every objective.

One front per stratum (backbone, dataset, ... held fixed, as in the figures): accuracies on
different datasets or backbones are not comparable, so neither are their fronts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.figures import SPANS, plot_pareto
from analysis.options import parse_pareto
from analysis.strata import stratify
from analysis.table import split_completed


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """values [n, k], larger is better in every column -> bool [n], True = non-dominated."""
    ge = (values[None, :, :] >= values[:, None, :]).all(-1)  # ge[i, j]: j at least as good as i
    gt = (values[None, :, :] > values[:, None, :]).any(-1)
    return ~(ge & gt).any(1)


def pareto(table: pd.DataFrame, objectives: dict[str, str],
           path: str | Path | None = None) -> tuple[pd.DataFrame, Path | None]:
    """(front rows per stratum, in column `strata`, among completed trials with every objective;
    the figure path if `path` is given).

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
    fronts = []
    for label, stratum in stratify(rows, SPANS):
        mask = pareto_mask(stratum[list(objectives)].to_numpy(float) * signs)
        fronts.append(stratum[mask].assign(strata=label))
    front = pd.concat(fronts)
    front = front.sort_values(["strata", list(objectives)[0]]).reset_index(drop=True)
    figure = plot_pareto(rows, front, objectives, Path(path)) if path is not None and len(rows) else None
    return front, figure

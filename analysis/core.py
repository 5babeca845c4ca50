"""`analyze`: tidy table in, tests / cells / report / figures out, gathered in an AnalysisResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from analysis.cells import cell_table
from analysis.families import TEST_COLUMNS, run_families
from analysis.figures import write_figures
from analysis.options import parse_alpha, parse_families, parse_metrics, parse_pareto
from analysis.pareto import pareto
from analysis.report import render_report
from analysis.table import metric_columns, split_completed, tidy
from trainables.keys import is_per_layer


@dataclass
class AnalysisResult:
    tests: pd.DataFrame  # one row per test, columns TEST_COLUMNS
    cells: pd.DataFrame  # one row per grid cell, seeds pooled
    paths: list[Path]  # every file written, report first
    excluded: dict[str, int]  # status -> number of trials left out
    out_dir: Path
    alpha: float = 0.05
    families: list[str] = field(default_factory=list)
    n_completed: int = 0
    pareto_front: pd.DataFrame | None = None

    @property
    def significant(self) -> pd.DataFrame:
        return self.tests[self.tests["p_adjusted"].astype(float) < self.alpha]


def tested_metrics(completed: pd.DataFrame, metrics: list[str], explicit: bool) -> list[str]:
    """Metrics that enter the test families: not constant, and not per-layer unless asked for."""
    varying = [m for m in metrics if completed[m].nunique(dropna=True) > 1]
    return varying if explicit else [m for m in varying if not is_per_layer(m)]


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def analyze(table: pd.DataFrame, out_dir: str | Path, families: Iterable[str] | str | None = None,
            metrics: Iterable[str] | str | None = None, alpha: float = 0.05,
            pareto_objectives: dict[str, str] | str | None = None,
            progress: Callable[[str], None] | None = None) -> AnalysisResult:
    """Run the requested test families on the completed trials of `table` and write to out_dir.

    Writes tests.csv, cells.csv, report.md, figures (PNG) and, with pareto_objectives,
    pareto_front.csv. Raises AnalysisInputError on bad options or a table without metrics.
    """
    families, alpha = parse_families(families), parse_alpha(alpha)
    objectives = parse_pareto(pareto_objectives, "--pareto")
    requested = parse_metrics(metrics)
    table = tidy(table, requested)
    completed, excluded = split_completed(table)
    chosen = metric_columns(completed)
    tested = tested_metrics(completed, chosen, explicit=requested is not None)
    _say(progress, f"{len(completed)} completed trial(s), {sum(excluded.values())} excluded; "
                   f"{len(tested)} metric(s) tested; families: {', '.join(families)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full = run_families(completed, tested, families, alpha)
    tests = full[list(TEST_COLUMNS)]
    _say(progress, f"{len(tests)} test(s), {int((tests['p_adjusted'] < alpha).sum())} significant after Holm")
    cells = cell_table(completed, chosen)
    tests.to_csv(out / "tests.csv", index=False)
    cells.to_csv(out / "cells.csv", index=False)
    figures = write_figures(completed, tests, chosen, out, alpha)
    front = None
    if objectives:
        front, figure = pareto(table, objectives, out / "pareto.png")
        front.to_csv(out / "pareto_front.csv", index=False)
        figures += [figure] if figure else []
    _say(progress, f"{len(figures)} figure(s) written")
    report = out / "report.md"
    report.write_text(render_report(full, cells, tested, excluded, alpha, len(completed), families,
                                    figures, front, objectives), encoding="utf-8")
    paths = [report, out / "tests.csv", out / "cells.csv", *figures]
    paths += [out / "pareto_front.csv"] if objectives else []
    return AnalysisResult(tests, cells, paths, excluded, out, alpha, families, len(completed), front)

"""`analyze`: tidy table in; tests, cells, each family's own table, report and figures out.

    confirm = parse_confirm("[{paired: [ft, lora], metric: retention}]")
    result = analyze(table, "out/", options=AnalysisOptions(confirm=confirm))

`prepare` (analysis/inputs.py) checks every option against the table first, so bad input
fails before anything is computed or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from analysis.cells import cell_table
from analysis.columns import unplaced_columns
from analysis.families import REGISTRY, TEST_COLUMNS, Output
from analysis.figures import write_figures
from analysis.inputs import Prepared, prepare
from analysis.options import AnalysisOptions, parse_alpha, parse_families, parse_metrics, parse_pareto
from analysis.pareto import pareto
from analysis.report import render_report
from analysis.scopes import apply_scopes
from analysis.table import tidy

Progress = Callable[[str], None] | None


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
    outputs: dict[str, Output] = field(default_factory=dict)  # each family's own table and notes

    @property
    def significant(self) -> pd.DataFrame:
        return self.tests[self.tests["p_adjusted"].astype(float) < self.alpha]


def _say(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


def _merge(options: AnalysisOptions | None, families, metrics, alpha, pareto_objectives) -> AnalysisOptions:
    """Keyword arguments override the options value (which is left unchanged)."""
    opts = replace(options) if options is not None else AnalysisOptions()
    if families is not None:
        opts.families = parse_families(families)
    if metrics is not None:
        opts.metrics = parse_metrics(metrics)
    if alpha is not None:
        opts.alpha = parse_alpha(alpha)
    if pareto_objectives is not None:
        opts.pareto = parse_pareto(pareto_objectives, "--pareto")
    return opts


def run_families(prepared: Prepared, progress: Progress = None) -> tuple[pd.DataFrame, dict[str, Output]]:
    """Every requested family on the completed trials; scopes and Holm applied. The frame holds
    TEST_COLUMNS plus `matched_on` (paired rows' grid keys, for the report's sentences)."""
    outputs, frames = {}, []
    for name in prepared.options.families:
        outputs[name] = REGISTRY[name].run(prepared.inputs)
        frames.append(pd.DataFrame(outputs[name].rows))
        _say(progress, f"{name}: {len(outputs[name].rows)} test(s)")
    frames = [f for f in frames if len(f)]  # concat of empty frames muddles the dtypes
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TEST_COLUMNS))
    tests = apply_scopes(raw, prepared.contrasts, prepared.options.alpha)
    tests["exact"] = tests["exact"].astype(bool)
    tests["matched_on"] = tests.get("matched_on", pd.Series("", index=tests.index)).map(
        lambda v: v if isinstance(v, str) else "")
    return tests[list(TEST_COLUMNS) + ["matched_on"]], outputs


def _write_details(outputs: dict[str, Output], out: Path) -> list[Path]:
    paths = []
    for name, output in outputs.items():
        if output.detail is not None and len(output.detail):
            output.detail.to_csv(out / f"{name}.csv", index=False)
            paths.append(out / f"{name}.csv")
    return paths


def analyze_prepared(prepared: Prepared, out_dir: str | Path, progress: Progress = None) -> AnalysisResult:
    opts, completed = prepared.options, prepared.completed
    _say(progress, f"{len(completed)} completed trial(s), {sum(prepared.excluded.values())} excluded; "
                   f"{len(prepared.inputs.metrics)} metric(s) tested; families: {', '.join(opts.families)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full, outputs = run_families(prepared, progress)
    tests = full[list(TEST_COLUMNS)]
    _say(progress, f"{len(tests)} test(s), {int((tests['p_adjusted'] < opts.alpha).sum())} significant after Holm")
    cells = cell_table(completed, prepared.shown)
    tests.to_csv(out / "tests.csv", index=False)
    cells.to_csv(out / "cells.csv", index=False)
    details = _write_details(outputs, out)
    figures = write_figures(completed, tests, prepared.shown, out, opts.alpha)
    figures += [p for name, o in outputs.items() if REGISTRY[name].figure
                and (p := REGISTRY[name].figure(o, out / f"{name}.png")) is not None]
    front = None
    if opts.pareto:
        front, figure = pareto(prepared.table, opts.pareto, out / "pareto.png")
        front.to_csv(out / "pareto_front.csv", index=False)
        figures += [figure] if figure else []
    _say(progress, f"{len(figures)} figure(s) written")
    report = out / "report.md"
    report.write_text(render_report(prepared, full, cells, outputs, figures, front,
                                    unplaced_columns(prepared.table)), encoding="utf-8")
    paths = [report, out / "tests.csv", out / "cells.csv", *details, *figures]
    paths += [out / "pareto_front.csv"] if opts.pareto else []
    return AnalysisResult(tests, cells, paths, prepared.excluded, out, opts.alpha, opts.families, len(completed),
                          front, outputs)


def analyze(table: pd.DataFrame, out_dir: str | Path, families: Iterable[str] | str | None = None,
            metrics: Iterable[str] | str | None = None, alpha: float | None = None,
            pareto_objectives: dict[str, str] | str | None = None, progress: Progress = None,
            options: AnalysisOptions | None = None) -> AnalysisResult:
    """Run the requested families on the completed trials of `table` and write to out_dir.

    Writes tests.csv, cells.csv, report.md, each family's own table (predictors.csv, ...),
    figures (PNG) and, with Pareto objectives, pareto_front.csv. Keyword arguments override
    `options`. Raises AnalysisInputError on bad options or a table without metrics.
    """
    opts = _merge(options, families, metrics, alpha, pareto_objectives)
    return analyze_prepared(prepare(tidy(table), opts), out_dir, progress)

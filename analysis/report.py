"""report.md: what the sweep showed, in sentences first, then the tables behind them.

Order: the first confirmatory contrast as one plain sentence (else the strongest finding),
the confirmatory section, the strata each family held fixed, the Holm families and their
sizes, cells, exploratory findings, one section per family that has its own (predictors,
early warning, selection, polarity), what the design cannot resolve, unplaced columns,
exclusions, the Pareto front and the figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.families import REGISTRY, Output
from analysis.inputs import Prepared
from analysis.markdown import markdown_table, num
from analysis.scopes import CONFIRMATORY, holm_summary
from analysis.sentences import confirm_sentence, finding_sentence, test_label
from analysis.strata import stratum_factors, with_arms
from trainables import keys
from trainables.keys import is_retention

_MAX_LISTED = 20  # tests listed per group; the rest are in tests.csv
TITLES = {"predictors": "Predictors of the target", "early_warning": "Early warning",
          "selection": "Selection utility", "polarity": "Polarity", "stop_rule": "Drift stop rule",
          "wise_frontier": "WiSE-FT α-frontier"}
HEADLINE = (keys.VAL_ACC, keys.TEST_ACC, keys.attn_delta("entropy"), keys.attn_delta("mass95"), keys.cka(),
            keys.WEIGHT_DRIFT, keys.EMBEDDING_DRIFT)


def cell_summary(cells: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Cells with one 'mean ± sd' column per metric: half as wide as cells.csv."""
    keys_ = list(cells.columns[: list(cells.columns).index("n") + 1])
    out = cells[keys_].copy()
    for m in metrics:
        mean, sd = cells[f"{m} mean"], cells[f"{m} sd"]
        out[m] = [num(a) + ("" if math.isnan(b) else f" ± {b:.2g}") for a, b in zip(mean, sd)]
    return out


def headline_metrics(metrics: list[str]) -> list[str]:
    """The few metrics a reader scans first (accuracy, retention, attention support, CKA, drift); all if none."""
    chosen = [m for m in metrics if m in HEADLINE or is_retention(m)]
    return chosen or metrics


def _lead(tests: pd.DataFrame, prepared: Prepared) -> str:
    """The report's first sentence: the first declared contrast, else the strongest exploratory finding."""
    alpha = prepared.options.alpha
    for contrast in prepared.contrasts:
        rows = tests[[contrast.matches(r) for _, r in tests.iterrows()]] if len(tests) else tests
        if len(rows):
            return confirm_sentence(rows.sort_values("p_value").iloc[0])
        return f"The declared contrast ({contrast.describe()}) could not be tested on this table (no matched rows)."
    hits = tests[tests["p_adjusted"].astype(float) < alpha]
    if hits.empty:
        return f"No test reaches Holm-adjusted p < {alpha:g}."
    return finding_sentence(hits.sort_values("p_adjusted").iloc[0])


def _confirm_lines(tests: pd.DataFrame, prepared: Prepared) -> list[str]:
    if not prepared.contrasts:
        return ["None declared (a spec's `analysis: confirm:` or `--confirm`): every test below is exploratory, "
                "corrected within its own family.", ""]
    lines = []
    for contrast in prepared.contrasts:
        rows = tests[[contrast.matches(r) for _, r in tests.iterrows()]] if len(tests) else tests
        found = [f"- {confirm_sentence(r)}" for _, r in rows.iterrows()]
        lines += found or [f"- {contrast.describe()}: no test (too few matched cells or trials)."]
    return lines + [""]


def _strata_lines(prepared: Prepared) -> list[str]:
    table = prepared.completed
    if table.empty:
        return ["No completed trials.", ""]
    rows = []
    for name in prepared.options.families:
        family = REGISTRY[name]
        fixed = stratum_factors(table, family.spans)
        rows.append((name, ", ".join(family.spans), ", ".join(fixed) or "(nothing else varies)"))
    arms = sorted(with_arms(table)["arm"].unique())
    every = sorted({f for _, _, held in rows for f in held.split(", ") if not held.startswith("(")})
    lead = (f"Every family holds fixed what varies here besides the factors it spans and the seed: "
            f"{', '.join(every)}." if every else "Nothing varies here besides the factors the families span.")
    return [lead, f"Arms, never pooled where a family holds the arm fixed: {', '.join(arms)}.", "",
            markdown_table(pd.DataFrame(rows, columns=["family", "spans", "held fixed (the strata column)"])), ""]


def _findings(tests: pd.DataFrame, alpha: float, families: list[str]) -> list[str]:
    """Significant exploratory tests of the families without a section of their own."""
    order = {family: i for i, family in enumerate(families)}
    listed = [f for f in families if REGISTRY[f].section is None]
    hits = tests[(tests["p_adjusted"].astype(float) < alpha) & (tests["scope"] != CONFIRMATORY)
                 & tests["family"].isin(listed)]
    hits = hits.assign(_rank=hits["family"].map(order)).sort_values(["_rank", "p_adjusted"], kind="stable")
    lines = []
    for family, group in hits.groupby("family", sort=False):
        lines += [f"- {finding_sentence(r)}" for _, r in group.head(_MAX_LISTED).iterrows()]
        if len(group) > _MAX_LISTED:
            lines.append(f"- … and {len(group) - _MAX_LISTED} more {family} finding(s) in tests.csv.")
    others = [TITLES.get(f, f) for f in families if f not in listed]
    tail = [f"(Findings of {', '.join(others)}: in their sections below.)"] if others else []
    return (lines or ["None."]) + tail


def _unresolved_lines(tests: pd.DataFrame, alpha: float) -> list[str]:
    stuck = tests[~tests["resolvable"].astype(bool) & tests["p_value"].notna()]
    if stuck.empty:
        return ["Every test can reach p < alpha."]
    lines = [f"These tests cannot reach p < {alpha:g} whatever the effect (p_min > alpha); "
             "more seeds or grid points would be needed:"]
    for (family, n, p_min), group in stuck.groupby(["family", "n", "p_min"], sort=True):
        labels = [test_label(r) for _, r in group.iterrows()]
        more = f"; and {len(labels) - _MAX_LISTED} more" if len(labels) > _MAX_LISTED else ""
        lines.append(f"- {family}, n = {int(n)}, best possible p = {p_min:.2g}: "
                     f"{'; '.join(labels[:_MAX_LISTED])}{more}")
    return lines


def _excluded_lines(excluded: dict[str, int]) -> list[str]:
    if not excluded:
        return ["None: every trial completed."]
    rows = pd.DataFrame(sorted(excluded.items()), columns=["status", "count"])
    return [f"{sum(excluded.values())} trial(s) left out of every test and cell:", "", markdown_table(rows)]


def _unplaced_lines(table: pd.DataFrame, unplaced: list[str]) -> list[str]:
    if not unplaced:
        return []
    numeric = [c for c in unplaced if pd.api.types.is_numeric_dtype(table[c])]
    text = [c for c in unplaced if c not in numeric]
    lines = ["## Columns not placed", "",
             f"{len(unplaced)} column(s) have no driftlab role (map them with `--columns FOREIGN=DRIFTLAB`):"]
    lines += [f"- kept as plain metrics (tested, but no role such as retention or a drift signal): "
              f"{', '.join(numeric)}"] if numeric else []
    lines += [f"- text, not used: {', '.join(text)}"] if text else []
    return lines + [""]


def _pareto_lines(front: pd.DataFrame | None, objectives: dict[str, str] | None) -> list[str]:
    if front is None or not objectives:
        return []
    shown = [c for c in front.columns if c in ("dataset", "model", "method", "lr", "seed", "data_fraction")
             or str(c).endswith("_lambda")]
    goals = ", ".join(f"{m} ({sense})" for m, sense in objectives.items())
    table = markdown_table(front[shown + list(objectives)]) if len(front) else "No trial has every objective."
    return [f"## Pareto front: {goals}", "", f"{len(front)} non-dominated trial(s) (front per stratum):", "",
            table, ""]


def _family_sections(tests: pd.DataFrame, outputs: dict[str, Output], prepared: Prepared) -> list[str]:
    lines = []
    for name, output in outputs.items():
        family = REGISTRY[name]
        if family.section is None:
            continue
        rows = tests[tests["family"] == name]
        lines += [f"## {TITLES.get(name, name)}", "", *family.section(rows, output, prepared.inputs), ""]
    return lines


def render_report(prepared: Prepared, tests: pd.DataFrame, cells: pd.DataFrame, outputs: dict[str, Output],
                  figures: list[Path], front: pd.DataFrame | None = None, unplaced: list[str] | None = None) -> str:
    """The whole report.md text; `tests` may carry the paired rows' `matched_on` column."""
    opts = prepared.options
    alpha, excluded = opts.alpha, prepared.excluded
    hits = tests[tests["p_adjusted"].astype(float) < alpha]
    lines = [
        "# driftlab analysis", "", _lead(tests, prepared), "",
        f"{len(prepared.completed)} completed trial(s) analysed, {sum(excluded.values())} excluded; families: "
        f"{', '.join(opts.families)}; alpha = {alpha:g}, Holm-corrected within each Holm family; "
        f"{len(tests)} test(s), {len(hits)} significant.", "",
        "## Confirmatory contrasts", "", *_confirm_lines(tests, prepared),
        "## Strata", "", *_strata_lines(prepared),
        "## Holm families", "", "Each p-value is corrected for the tests of its own Holm family:", "",
        markdown_table(holm_summary(tests, alpha)), "",
        "## Cells (mean ± sd over seeds; headline metrics here, every metric in cells.csv)", "",
        markdown_table(cell_summary(cells, headline_metrics(prepared.shown))) if len(cells) else "No completed trials.",
        "", f"## Exploratory findings (Holm-adjusted p < {alpha:g} within each family)", "",
        *_findings(tests, alpha, opts.families), "",
        *_family_sections(tests, outputs, prepared),
        "## Not resolvable", "", *_unresolved_lines(tests, alpha), "",
        *_unplaced_lines(prepared.table, unplaced or []),
        "## Excluded trials", "", *_excluded_lines(excluded), "",
        *_pareto_lines(front, opts.pareto),
    ]
    if figures:
        lines += ["## Figures", "", *[f"![{p.stem}]({p.name})" for p in figures], ""]
    return "\n".join(lines)

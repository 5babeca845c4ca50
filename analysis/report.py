"""report.md: cells, significant findings in plain sentences, what could not be resolved, exclusions.

A reader who opens only this file should learn what the sweep showed, which questions the
design was too small to answer, and which trials were left out.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from trainables import keys
from trainables.keys import higher_is_better, is_retention

_MAX_LISTED = 20  # unresolvable tests listed per group; the rest are in tests.csv


def _num(value: object, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' to_markdown needs tabulate, which is not a dependency)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_num(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _p_text(row: pd.Series) -> str:
    how = "exact" if row["exact"] else "Monte Carlo"
    return f"{how}, n = {int(row['n'])}, p = {row['p_value']:.2g}, Holm {row['p_adjusted']:.2g}"


def _ci_text(low: float, high: float) -> str:
    return "" if math.isnan(low) or math.isnan(high) else f", 95% CI {low:.3g} to {high:.3g}"


def _contrast_sentence(row: pd.Series) -> str:
    """'On D, A keeps X more M than B ...', with the larger arm first so X is positive."""
    a, b, effect, low, high = row["a"], row["b"], row["effect"], row["ci_low"], row["ci_high"]
    if effect < 0:
        a, b, effect, low, high = b, a, -effect, -high, -low
    metric = row["metric"]
    verb = "keeps" if is_retention(metric) else "has"
    direction = higher_is_better(metric)
    verdict = "" if direction is None else "better; " if direction else "worse; "
    if row["family"] == "paired":
        where = f" at matched {row['matched_on']}" if row.get("matched_on") else ""
        test = "paired sign-flip"
    else:
        where, test = " over unmatched cells", "two-sample permutation"
    return (f"On {row['dataset']}, {a} {verb} {effect:.3g} more {metric} than {b}{where} "
            f"({verdict}{test}, {_p_text(row)}{_ci_text(low, high)}).")


def _spearman_sentence(row: pd.Series) -> str:
    trend = "rises" if row["effect"] > 0 else "falls"
    who = f"for {row['method']}, " if row["family"] == "dose" else ""
    pooled = "" if row["family"] == "dose" else ", all methods pooled"
    return (f"On {row['dataset']}, {who}{row['metric']} {trend} as {row['a']} rises "
            f"(Spearman ρ = {row['effect']:.2f}{pooled}, {_p_text(row)}"
            f"{_ci_text(row['ci_low'], row['ci_high'])}).")


def finding_sentence(row: pd.Series) -> str:
    if row["family"] in ("paired", "unpaired"):
        return _contrast_sentence(row)
    return _spearman_sentence(row)


def cell_summary(cells: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Cells with one 'mean ± sd' column per metric: half as wide as cells.csv."""
    keys = list(cells.columns[: list(cells.columns).index("n") + 1])
    out = cells[keys].copy()
    for m in metrics:
        mean, sd = cells[f"{m} mean"], cells[f"{m} sd"]
        out[m] = [_num(a) + ("" if math.isnan(b) else f" ± {b:.2g}") for a, b in zip(mean, sd)]
    return out


HEADLINE = (keys.VAL_ACC, keys.TEST_ACC, keys.attn_delta("entropy"), keys.attn_delta("mass95"), keys.cka())


def headline_metrics(metrics: list[str]) -> list[str]:
    """The few metrics a reader scans first (accuracy, retention, attention support, CKA); all when none is there."""
    chosen = [m for m in metrics if m in HEADLINE or is_retention(m)]
    return chosen or metrics


def test_label(row: pd.Series) -> str:
    """'eurosat: lora vs ft, val/acc' or 'eurosat/lora: val/acc vs log10(lr)'."""
    if row["family"] in ("paired", "unpaired"):
        return f"{row['dataset']}: {row['a']} vs {row['b']}, {row['metric']}"
    who = f"{row['dataset']}/{row['method']}" if row["family"] == "dose" else str(row["dataset"])
    return f"{who}: {row['metric']} vs {row['a']}"


def _unresolved_lines(tests: pd.DataFrame, alpha: float) -> list[str]:
    stuck = tests[~tests["resolvable"].astype(bool)]
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


def _pareto_lines(front: pd.DataFrame | None, objectives: dict[str, str] | None) -> list[str]:
    if front is None or not objectives:
        return []
    shown = [c for c in front.columns if c in ("dataset", "method", "lr", "seed", "gta_lambda", "data_fraction")]
    goals = ", ".join(f"{m} ({sense})" for m, sense in objectives.items())
    table = markdown_table(front[shown + list(objectives)]) if len(front) else "No trial has every objective."
    return [f"## Pareto front: {goals}", "", f"{len(front)} non-dominated trial(s) (front per dataset):", "", table, ""]


def render_report(tests: pd.DataFrame, cells: pd.DataFrame, metrics: list[str], excluded: dict[str, int],
                  alpha: float, n_completed: int, families: list[str], figures: list[Path],
                  front: pd.DataFrame | None = None, objectives: dict[str, str] | None = None) -> str:
    """The whole report.md text; `tests` may carry the paired rows' `matched_on` column."""
    order = {family: i for i, family in enumerate(families)}  # findings in the order asked for
    hits = tests[tests["p_adjusted"].astype(float) < alpha]
    hits = hits.assign(_rank=hits["family"].map(order)).sort_values(["_rank", "p_adjusted"], kind="stable")
    findings = [f"- {finding_sentence(row)}" for _, row in hits.iterrows()] or ["None."]
    lines = [
        "# driftlab analysis", "",
        f"{n_completed} completed trial(s) analysed, {sum(excluded.values())} excluded; families: "
        f"{', '.join(families)}; alpha = {alpha:g} with Holm correction within each family; "
        f"{len(tests)} test(s), {len(hits)} significant.", "",
        "## Cells (mean ± sd over seeds; headline metrics here, every metric in cells.csv)", "",
        markdown_table(cell_summary(cells, headline_metrics(metrics))) if len(cells) else "No completed trials.", "",
        f"## Significant findings (Holm-adjusted p < {alpha:g})", "", *findings, "",
        "## Not resolvable", "", *_unresolved_lines(tests, alpha), "",
        "## Excluded trials", "", *_excluded_lines(excluded), "",
        *_pareto_lines(front, objectives),
    ]
    if figures:
        lines += ["## Figures", "", *[f"![{p.stem}]({p.name})" for p in figures], ""]
    return "\n".join(lines)

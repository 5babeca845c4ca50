"""Plain sentences for tests.csv rows: what a reader of report.md sees first."""

from __future__ import annotations

import math

import pandas as pd

from analysis.markdown import where
from trainables import keys
from trainables.keys import higher_is_better, is_retention

PERCENT_KINDS = ("zeroshot",)  # metric kinds in % (retention, zero-shot accuracy): effects read as points


def _p_text(row: pd.Series) -> str:
    how = "exact" if row["exact"] else "Monte Carlo"
    m = int(row["holm_m"]) if "holm_m" in row and pd.notna(row["holm_m"]) else 0
    family = f" over {m} test(s)" if m else ""
    return f"{how}, n = {int(row['n'])}, p = {row['p_value']:.2g}, Holm {row['p_adjusted']:.2g}{family}"


def _ci_text(low: float, high: float) -> str:
    return "" if math.isnan(low) or math.isnan(high) else f", 95% CI {low:.3g} to {high:.3g}"


def metric_phrase(metric: str) -> str:
    """`zeroshot/embedded_colour/retention` -> 'zero-shot embedded_colour retention'; other keys as they are."""
    parsed = keys.parse(metric)
    if parsed is not None and parsed.kind == "zeroshot":
        return f"{'best-epoch ' if parsed.best else ''}zero-shot {parsed.subject} {parsed.metric}"
    return metric


def _unit(metric: str) -> str:
    parsed = keys.parse(metric)
    in_percent = parsed is not None and (parsed.kind in PERCENT_KINDS or parsed.metric in (keys.VAL_ACC, keys.TEST_ACC))
    return " points" if in_percent else ""


def confirm_sentence(row: pd.Series) -> str:
    """'ft keeps less zero-shot colour retention than lora at matched lr and seed: −36 points, 9 matched cells,
    Holm p = 0.004 (1 confirmatory test).' for a paired row; the finding sentence otherwise."""
    if row["family"] != "paired":
        return finding_sentence(row)
    verb = "keeps" if is_retention(row["metric"]) else "has"
    more = "less" if row["effect"] < 0 else "more"
    matched = f" at matched {row['matched_on']}" if row.get("matched_on") else ""
    effect = f"{row['effect']:+.3g}".replace("-", "−")
    m = int(row["holm_m"])
    stratum = "" if row["strata"] in ("", "all") else f" ({row['strata']})"
    interval = _ci_text(row["ci_low"], row["ci_high"]).replace("-", "−")
    return (f"{row['a']} {verb} {more} {metric_phrase(row['metric'])} than {row['b']}{matched}{stratum}: "
            f"{effect}{_unit(row['metric'])}{interval}, {int(row['n'])} matched "
            f"cells, {'exact' if row['exact'] else 'Monte Carlo'} sign-flip p = {row['p_value']:.2g}, Holm p = "
            f"{row['p_adjusted']:.2g} ({m} {row['scope']} test{'s' if m != 1 else ''}).")


def _contrast_sentence(row: pd.Series) -> str:
    """'A keeps X more M than B ...', with the larger arm first so X is positive."""
    a, b, effect, low, high = row["a"], row["b"], row["effect"], row["ci_low"], row["ci_high"]
    if effect < 0:
        a, b, effect, low, high = b, a, -effect, -high, -low
    metric = row["metric"]
    verb = "keeps" if is_retention(metric) else "has"
    direction = higher_is_better(metric)
    verdict = "" if direction is None else "better; " if direction else "worse; "
    if row["family"] == "paired":
        cells = f" at matched {row['matched_on']}" if row.get("matched_on") else ""
        test = "paired sign-flip"
    else:
        cells, test = " over unmatched cells", "two-sample permutation"
    return (f"{where(row['strata'])}{a} {verb} {effect:.3g} more {metric} than {b}{cells} "
            f"({verdict}{test}, {_p_text(row)}{_ci_text(low, high)}).")


def _spearman_sentence(row: pd.Series) -> str:
    trend = "rises" if row["effect"] > 0 else "falls"
    pooled = "" if row["family"] == "dose" else ", arms pooled"
    return (f"{where(row['strata'])}{row['metric']} {trend} as {row['a']} rises "
            f"(Spearman ρ = {row['effect']:.2f}{pooled}, {_p_text(row)}{_ci_text(row['ci_low'], row['ci_high'])}).")


def finding_sentence(row: pd.Series) -> str:
    family = row["family"]
    if family in ("paired", "unpaired"):
        return _contrast_sentence(row)
    if family in ("dose", "association", "predictors", "polarity"):
        return _spearman_sentence(row)
    if family == "early_warning":
        stat = "AUC" if "AUC" in row["b"] else "ρ"
        return (f"{where(row['strata'])}{row['a']} ({row['b']}) forecasts the final {row['metric']}: {stat} = "
                f"{row['effect']:.2f} ({_p_text(row)}).")
    return (f"{where(row['strata'])}picking by {row['a']} {row['b']} of the best validation accuracy leaves "
            f"regret {row['effect']:.3g} on {row['metric']} ({_p_text(row)}).")


def test_label(row: pd.Series) -> str:
    """A short name for a test: 'ft vs lora, val/acc [model=b32]'."""
    stratum = "" if row["strata"] in ("", "all") else f" [{row['strata']}]"
    if row["family"] in ("paired", "unpaired"):
        return f"{row['a']} vs {row['b']}, {row['metric']}{stratum}"
    extra = f" ({row['b']})" if row["b"] else ""
    return f"{row['metric']} vs {row['a']}{extra}{stratum}"

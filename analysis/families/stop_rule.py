"""stop_rule: what a drift stop rule did to a sweep, against the same sweep without it.

A spec runs both arms as variants (the same trials with and without `stop_metric`). Trials
are matched on every varying parameter but the stop keys; per rule and stratum, over the
matched pairs:
- compute saved = mean(1 − stop/compute_frac), the share of configured optimiser steps not run
  (a trial whose rule never fired ran them all);
- retention kept = mean(rule − no rule) of the selected model's zero-shot retention (`best/`
  when the table has it), in points; > 0: the rule kept more;
- accuracy given up = mean(no rule − rule) of the selected model's test accuracy.
Both differences get an exact sign-flip test over the pairs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.families.common import Family, Inputs, Output, fmt, row
from analysis.markdown import capital, markdown_table, where
from analysis.permutation import sign_flip_test
from analysis.strata import ARM, LR, SEED, stratify
from analysis.table import varying_parameters
from trainables import keys

STOP_KEYS = ("stop_metric", "stop_above", "stop_below", "stop_patience")
SPANS = (ARM, LR, SEED, *STOP_KEYS)


def _has_rule(rows: pd.DataFrame) -> pd.Series:
    if "stop_metric" not in rows.columns:
        return pd.Series(False, index=rows.index)
    return ~rows["stop_metric"].astype(str).str.strip().isin(("", "nan", "None"))


def _rule_label(r: pd.Series) -> str:
    above = str(r.get("stop_above", "None")) not in ("", "nan", "None")
    side, threshold = (">", r["stop_above"]) if above else ("<", r.get("stop_below"))
    return f"{r['stop_metric']} {side} {threshold} (patience {r.get('stop_patience', 1)})"


def selected(table: pd.DataFrame, key: str) -> str:
    """The selected model's column (`best/<key>`) when the table has it, else `key`."""
    return keys.best(key) if keys.best(key) in table.columns else key


def _pairs(stratum: pd.DataFrame, label: str) -> pd.DataFrame:
    """One row per matched (rule, no rule) pair of trials: `<column>_rule`, `<column>_base`."""
    match_on = varying_parameters(stratum, exclude=STOP_KEYS)
    rule = stratum[_has_rule(stratum) & (stratum["_rule"] == label)]
    base = stratum[~_has_rule(stratum)]

    def key(rows: pd.DataFrame) -> pd.Series:
        if not match_on or rows.empty:  # nothing else varies (every trial matches every other), or no trials
            return pd.Series("", index=rows.index, dtype=object)
        return rows[match_on].astype(str).agg("|".join, axis=1)  # on no rows this gives a frame, not a series
    return rule.assign(_key=key(rule)).merge(base.assign(_key=key(base)), on="_key", suffixes=("_rule", "_base"))


def _stratum(strata: str, stratum: pd.DataFrame, retention: str | None, accuracy: str) -> tuple[list, list]:
    tests, detail = [], []
    stratum = stratum.assign(_rule=[_rule_label(r) if has else "" for (_, r), has
                                    in zip(stratum.iterrows(), _has_rule(stratum))])
    for label in sorted(set(stratum["_rule"]) - {""}):
        pairs = _pairs(stratum, label)
        if pairs.empty:
            continue
        frac = pd.to_numeric(pairs.get(f"{keys.STOP_COMPUTE}_rule"), errors="coerce").fillna(1.0).to_numpy(float)
        fired = int((pairs["status_rule"].astype(str) == "stopped_drift").sum()) if "status_rule" in pairs else 0
        found = {"strata": strata, "rule": label, "pairs": len(pairs), "fired": fired,
                 "compute_saved": float(np.mean(1 - frac))}
        for name, column, sign in (("retention_kept", retention, 1.0), ("accuracy_given_up", accuracy, -1.0)):
            if column is None or f"{column}_rule" not in pairs:
                found[name] = math.nan
                continue
            d = sign * (pd.to_numeric(pairs[f"{column}_rule"], errors="coerce")
                        - pd.to_numeric(pairs[f"{column}_base"], errors="coerce")).to_numpy(float)
            d = d[np.isfinite(d)]
            found[name] = float(d.mean()) if len(d) else math.nan
            if len(d) and d.any():
                tests.append(row("stop_rule", strata, stratum, column, len(d), float(d.mean()), sign_flip_test(d),
                                 a=label, b="no rule", effect_size=found["compute_saved"]))
        detail.append(found)
    return tests, detail


def run_stop_rule(inputs: Inputs) -> Output:
    table = inputs.table
    if not _has_rule(table).any():
        return Output([], notes=["No trial had a stop rule (stop_metric)."])
    retention = selected(table, inputs.target) if inputs.target else None
    accuracy = selected(table, keys.TEST_ACC)
    tests, detail = [], []
    for strata, stratum in stratify(table, SPANS):
        found_tests, found_detail = _stratum(strata, stratum, retention, accuracy)
        tests += found_tests
        detail += found_detail
    notes = [f"Retention and accuracy are the selected model's ({retention}, {accuracy}); compute saved is the "
             "share of configured optimiser steps a rule did not run."]
    if not detail:
        notes.insert(0, "No trial with a stop rule has a twin without one (run both arms as variants).")
    return Output(tests, pd.DataFrame(detail), notes)


def section(tests: pd.DataFrame, output: Output, inputs: Inputs) -> list[str]:
    detail = output.detail
    if detail is None or detail.empty:
        return output.notes
    lines = []
    for _, r in detail.iterrows():
        lines.append(capital(f"{where(r['strata'])}the rule {r['rule']} fired in {r['fired']} of {r['pairs']} "
                             f"trials, saved {fmt(100 * r['compute_saved'])}% of the optimiser steps, kept "
                             f"{fmt(r['retention_kept'])} points of retention and gave up "
                             f"{fmt(r['accuracy_given_up'])} points of test accuracy against the same trials "
                             "without it."))
    return [*lines, "", markdown_table(detail, 3), "", *output.notes]


STOP_RULE = Family("stop_rule", SPANS, run_stop_rule,
                   "a stop rule against the same trials without it: retention kept, accuracy given up", section)

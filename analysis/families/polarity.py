"""polarity: the sign of a drift signal's correlation with the target, group by group.

One signed Spearman ρ per group, a group being every factor but lr and seed held fixed
(backbone × dataset × arm × ...), for Δentropy, CKA, weight drift and embedding drift where
present: a sign that flips between backbones shows here instead of averaging away.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.families.common import Family, Inputs, Output, arm_of, spearman_row
from analysis.markdown import markdown_table
from analysis.signals import signal_for
from analysis.strata import LR, SEED, stratify
from trainables import keys

SPANS = (LR, SEED)


def polarity_columns(target: str) -> list[str]:
    """The signals read for polarity, at the target's point (best/ or last epoch)."""
    parsed = keys.parse(target)
    found = [keys.attn_delta("entropy"), keys.cka(), keys.WEIGHT_DRIFT, keys.EMBEDDING_DRIFT]
    return [keys.best(k) for k in found] if parsed is not None and parsed.best else found


def run_polarity(inputs: Inputs) -> Output:
    if inputs.target is None:
        return Output([], notes=["No target column (zero-shot retention): no polarity."])
    columns = [c for c in polarity_columns(inputs.target) if c in inputs.table.columns]
    rows, detail = [], []
    for strata, stratum in stratify(inputs.table, SPANS):
        y = pd.to_numeric(stratum[inputs.target], errors="coerce").to_numpy(float)
        for column in columns:
            found = spearman_row("polarity", strata, stratum, inputs.target, signal_for(column).values(stratum), y,
                                 method=arm_of(stratum), a=column)
            if found:
                rows.append(found)
                detail.append({"strata": strata, "signal": column, "rho": found["effect"], "n": found["n"]})
    missing = [c for c in polarity_columns(inputs.target) if c not in inputs.table.columns]
    notes = [f"Not in this table: {', '.join(missing)}."] if missing else []
    return Output(rows, pd.DataFrame(detail), notes)


def _signs(detail: pd.DataFrame) -> list[str]:
    """One clause per signal: the same sign everywhere, or where it flips."""
    clauses = []
    def named(rows: pd.DataFrame) -> str:
        return ", ".join(f"{s} (n {n})" for s, n in zip(rows["strata"], rows["n"]))

    for signal, group in detail.groupby("signal", sort=False):
        negative, positive = group[group["rho"] < 0], group[group["rho"] > 0]
        if len(negative) and len(positive):
            clauses.append(f"{signal} flips sign (negative in {named(negative)}; positive in {named(positive)})")
        else:
            clauses.append(f"{signal} is {'negative' if len(negative) else 'positive'} in all {len(group)} group(s)")
    return clauses


def section(tests: pd.DataFrame, output: Output, inputs: Inputs) -> list[str]:
    detail = output.detail
    if detail is None or detail.empty:
        return ["No group had enough runs for a signed ρ.", *output.notes]
    table = detail.assign(value=[f"{r:+.2f} (n {n})" for r, n in zip(detail["rho"], detail["n"])])
    pivot = table.pivot(index="strata", columns="signal", values="value").fillna("").reset_index()
    flips = any(np.sign(g["rho"]).nunique() > 1 for _, g in detail.groupby("signal"))
    lead = "A sign flips between groups: " if flips else "No sign flips between groups: "
    return [lead + "; ".join(_signs(detail)) + ".", "", markdown_table(pivot), "", *output.notes]


POLARITY = Family("polarity", SPANS, run_polarity,
                  "signed ρ of Δentropy, CKA, weight and embedding drift with the target per group", section)

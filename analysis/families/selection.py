"""selection: how good a model does a drift signal pick among the nearly best ones?

Per stratum and margin m: the candidates are the runs within m points of the best validation
accuracy (best/val/acc when the target is a best/ key). Each signal picks its least-drifted
candidate (its smallest value, oriented so larger = more drift; ties share the pick, their
target averaged). Reported: the chosen run's target, the oracle (best target among the
candidates), random (the candidates' mean), regret = oracle − chosen, and the fraction of the
candidates' range achieved, (chosen − worst) / (oracle − worst). The p-value is exact and
one-sided: the share of candidates whose target is at least the chosen one's, i.e. how often
a uniformly random pick does as well.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.families.common import Family, Inputs, Output, chosen_arms, fmt, row
from analysis.markdown import capital, markdown_table, where
from analysis.permutation import PermResult
from analysis.signals import Signal
from analysis.strata import ARM, LR, SEED, stratify
from trainables import keys

SPANS = (ARM, LR, SEED)


def share(fraction: float) -> str:
    return "–" if not np.isfinite(fraction) else f"{fraction:.0%}"


def validation_key(target: str) -> str:
    parsed = keys.parse(target)
    return keys.best(keys.VAL_ACC) if parsed is not None and parsed.best else keys.VAL_ACC


def pick(signal_values: np.ndarray, target: np.ndarray, direction: int) -> dict:
    """The least-drifted candidate's target (ties averaged) against oracle, random and worst."""
    oriented = direction * signal_values
    chosen = float(np.mean(target[oriented == oriented.min()]))
    oracle, worst = float(target.max()), float(target.min())
    span = oracle - worst
    return {"n_candidates": len(target), "chosen": chosen, "oracle": oracle, "random": float(target.mean()),
            "worst": worst, "regret": oracle - chosen, "fraction": (chosen - worst) / span if span > 0 else math.nan,
            "p_value": float(np.mean(target >= chosen - 1e-12))}


def _candidates(rows: pd.DataFrame, val: str, margin: float) -> pd.DataFrame:
    acc = pd.to_numeric(rows[val], errors="coerce")
    acc = acc * 100 if acc.max() <= 1 else acc  # a fraction: margins are still percentage points
    return rows[acc >= acc.max() - margin]


def _stratum(strata: str, rows: pd.DataFrame, inputs: Inputs, signals: list[Signal], val: str):
    tests, detail = [], []
    for margin in inputs.margins:
        candidates = _candidates(rows, val, margin)
        y = pd.to_numeric(candidates[inputs.target], errors="coerce").to_numpy(float)
        for signal in signals:
            x = signal.values(candidates)
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                continue
            found = pick(x[ok], y[ok], signal.direction)
            detail.append({"strata": strata, "margin": margin, "signal": signal.name, **found})
            result = PermResult(found["chosen"], found["p_value"], True, 1.0 / found["n_candidates"],
                                found["n_candidates"])
            tests.append(row("selection", strata, candidates, inputs.target, found["n_candidates"], found["regret"],
                             result, effect_size=found["fraction"], a=signal.name, b=f"within {margin:g} points"))
    return tests, detail


def run_selection(inputs: Inputs) -> Output:
    if inputs.target is None:
        return Output([], notes=["No target column (zero-shot retention): nothing to select for."])
    val = validation_key(inputs.target)
    if val not in inputs.table.columns:
        return Output([], notes=[f"No {val} column: selection needs validation accuracy."])
    # Only signals with a declared direction can name the least-drifted run without peeking at the target.
    signals = [s for s in inputs.signals if s.direction]
    tests, detail = [], []
    for strata, stratum in stratify(inputs.table, SPANS):
        found_tests, found_detail = _stratum(strata, chosen_arms(stratum, inputs.methods), inputs, signals, val)
        tests += found_tests
        detail += found_detail
    notes = [f"Candidates are ranked by {val}; signals without a declared direction (a signed Δ, the train loss) "
             "pick nothing (|Δ| stands for them)."]
    return Output(tests, pd.DataFrame(detail), notes)


def section(tests: pd.DataFrame, output: Output, inputs: Inputs) -> list[str]:
    detail = output.detail
    if detail is None or detail.empty:
        return ["No selection could be made.", *output.notes]
    lines = []
    for strata, group in detail.groupby("strata", sort=True):
        margin = 2.0 if 2.0 in set(group["margin"]) else float(group["margin"].min())
        at = group[group["margin"] == margin].sort_values(["regret", "signal"])
        best = at.iloc[0]
        tied = at[at["regret"] == best["regret"]]["signal"].tolist()
        who = tied[0] if len(tied) == 1 else f"{', '.join(tied[:3])}{' and others' if len(tied) > 3 else ''} (tied)"
        picks = "picks" if len(tied) == 1 else "pick"
        lines.append(capital(f"{where(strata)}among the {best['n_candidates']} runs within {margin:g} points of the "
                             f"best validation accuracy, {who} {picks} a run keeping {fmt(best['chosen'], 3)} "
                             f"(oracle {fmt(best['oracle'], 3)}, random {fmt(best['random'], 3)}): regret "
                             f"{fmt(best['regret'], 3)}, {share(best['fraction'])} of the candidates' range."))
        shown = group.sort_values(["margin", "regret"])[["margin", "signal", "n_candidates", "chosen", "oracle",
                                                          "random", "regret", "fraction", "p_value"]]
        lines += ["", markdown_table(shown, 3), ""]
    return lines + output.notes


SELECTION = Family("selection", SPANS, run_selection,
                   "regret of the least-drifted pick among runs near the best validation accuracy", section)

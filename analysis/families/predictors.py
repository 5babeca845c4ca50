"""predictors: which drift signal tracks the target (zero-shot retention by default) best.

Per stratum, over the chosen arms' trials: Spearman ρ(signal, target) with its permutation p;
the mean |ρ| within each arm (with the number of arms and the smallest arm's n); a bootstrap
CI of |ρ| resampling cells (seeds of one configuration stay together, analysis/bootstrap.py);
and the paired bootstrap gap |ρ| − |ρ_reference| with the share of resamples in which the
reference (CKA by default) has the larger |ρ|.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.bootstrap import cell_weights, percentile_ci, resampled_rho
from analysis.families.common import Family, Inputs, Output, chosen_arms, fmt, row
from analysis.figures import panel_title, panels, save
from analysis.markdown import markdown_table, where
from analysis.permutation import spearman_test
from analysis.signals import Signal
from analysis.strata import ARM, LR, SEED, cell_ids, stratify
from trainables import keys

SPANS = (ARM, LR, SEED)
MIN_N = 3  # fewer trials than this give no ρ
# Signals a full driftlab table has; a table without them says so in the report.
EXPECTED = {keys.WEIGHT_DRIFT: "weight drift", keys.EMBEDDING_DRIFT: "embedding drift",
            keys.cka(): "CKA", keys.attn_delta("entropy"): "attention Δentropy"}


def _within_arms(rows: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
    """(mean |ρ| over arms with a defined ρ, how many arms, the smallest such arm's n)."""
    found = []
    for arm in rows[ARM].unique():
        mask = (rows[ARM] == arm).to_numpy() & np.isfinite(x) & np.isfinite(y)
        result = spearman_test(x[mask], y[mask]) if mask.sum() >= MIN_N else None
        found += [(abs(result.statistic), int(mask.sum()))] if result else []
    if not found:
        return math.nan, 0, 0
    return float(np.mean([r for r, _ in found])), len(found), min(n for _, n in found)


def _rho_and_boot(x: np.ndarray, y: np.ndarray, weights: np.ndarray):
    """(permutation result, [B] |ρ| on the cell resamples) over the trials where both are set; None if undefined."""
    mask = np.isfinite(x) & np.isfinite(y)
    result = spearman_test(x[mask], y[mask]) if mask.sum() >= MIN_N else None
    if result is None:
        return None
    return result, np.abs(resampled_rho(x[mask, None], y[mask], weights[:, mask])[:, 0])


def _gap(result, boot: np.ndarray, reference) -> dict:
    """|ρ| − |ρ_reference| with its paired percentile CI, and the share of resamples the reference wins."""
    if reference is None:
        return {"gap_to_reference": math.nan, "gap_ci_low": math.nan, "gap_ci_high": math.nan,
                "reference_wins": math.nan}
    ref_result, ref_boot = reference
    both = np.isfinite(boot) & np.isfinite(ref_boot)
    low, high = percentile_ci(boot[both] - ref_boot[both])
    return {"gap_to_reference": abs(result.statistic) - abs(ref_result.statistic), "gap_ci_low": low,
            "gap_ci_high": high, "reference_wins": float(np.mean(ref_boot[both] > boot[both])) if both.any()
            else math.nan}


def _signal_stats(rows: pd.DataFrame, signal: Signal, y: np.ndarray, weights: np.ndarray, reference):
    x = signal.values(rows)
    found = _rho_and_boot(x, y, weights)
    if found is None:
        return None
    result, boot = found
    within, groups, min_n = _within_arms(rows, x, y)
    low, high = percentile_ci(boot)
    return {"signal": signal.name, "n": int(np.sum(np.isfinite(x) & np.isfinite(y))), "rho": result.statistic,
            "abs_rho": abs(result.statistic), "p_value": result.p_value, "abs_rho_ci_low": low,
            "abs_rho_ci_high": high, "within_arm_mean_abs_rho": within, "within_arm_groups": groups,
            "within_arm_min_n": min_n, **_gap(result, boot, reference)}, result


def run_predictors(inputs: Inputs) -> Output:
    if inputs.target is None:
        return Output([], notes=["No target column (zero-shot retention): nothing to predict."])
    rows_out, detail = [], []
    for strata, stratum in stratify(inputs.table, SPANS):
        rows = chosen_arms(stratum, inputs.methods).reset_index(drop=True)
        y = pd.to_numeric(rows[inputs.target], errors="coerce").to_numpy(float)
        weights = cell_weights(cell_ids(rows))
        reference = _rho_and_boot(inputs.reference.values(rows), y, weights) if inputs.reference else None
        for signal in inputs.signals:
            found = _signal_stats(rows, signal, y, weights, None if signal == inputs.reference else reference)
            if found is None:
                continue
            stats_, result = found
            detail.append({"strata": strata, **stats_})
            rows_out.append(row("predictors", strata, rows, inputs.target, stats_["n"], stats_["rho"], result,
                                effect_size=stats_["abs_rho"], ci=(stats_["abs_rho_ci_low"], stats_["abs_rho_ci_high"]),
                                a=signal.name))
    missing = [name for key, name in EXPECTED.items() if key not in inputs.table.columns]
    notes = [f"This table has no {', '.join(missing)}: those signals are not ranked."] if missing else []
    return Output(rows_out, pd.DataFrame(detail), notes)


def _ranking(detail: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    holm = dict(zip(tests["a"], tests["p_adjusted"]))
    ranked = detail.sort_values("abs_rho", ascending=False)
    return pd.DataFrame({
        "signal": ranked["signal"], "ρ": ranked["rho"], "n": ranked["n"],
        "|ρ| 95% CI": [f"{fmt(a)} to {fmt(b)}" for a, b in zip(ranked["abs_rho_ci_low"], ranked["abs_rho_ci_high"])],
        "p": ranked["p_value"], "Holm p": ranked["signal"].map(holm),
        "mean |ρ| within arm (arms, min n)": [f"{fmt(m)} ({g}, {k})" for m, g, k in zip(
            ranked["within_arm_mean_abs_rho"], ranked["within_arm_groups"], ranked["within_arm_min_n"])],
        "gap to reference (95% CI)": [f"{fmt(g)} ({fmt(a)} to {fmt(b)})" if np.isfinite(g) else "" for g, a, b in
                                      zip(ranked["gap_to_reference"], ranked["gap_ci_low"], ranked["gap_ci_high"])],
        "reference wins": ranked["reference_wins"],
    })


def section(tests: pd.DataFrame, output: Output, inputs: Inputs) -> list[str]:
    detail = output.detail
    if detail is None or detail.empty:
        return [f"No signal could be ranked against {inputs.target or 'a target'}.", *output.notes]
    lines = []
    ref = inputs.reference.name if inputs.reference else None
    for strata, group in detail.groupby("strata", sort=True):
        best = group.sort_values("abs_rho", ascending=False).iloc[0]
        ref_text = ""
        if ref and ref != best["signal"] and np.isfinite(best["reference_wins"]):
            ref_text = (f"; the reference {ref} has the larger |ρ| in {best['reference_wins']:.0%} of "
                        "cell resamples")
        lines += [f"{where(strata)}{best['signal']} tracks {inputs.target} best: ρ = {best['rho']:.2f} "
                  f"(95% CI of |ρ| {fmt(best['abs_rho_ci_low'])} to {fmt(best['abs_rho_ci_high'])}, "
                  f"n = {best['n']}){ref_text}.", "",
                  markdown_table(_ranking(group, tests[tests["strata"] == strata]), 3), ""]
    if detail["strata"].nunique() > 1:
        over = detail.groupby("signal").agg(mean_abs_rho=("abs_rho", "mean"), strata=("abs_rho", "size"),
                                            min_n=("n", "min")).sort_values("mean_abs_rho", ascending=False)
        lines += ["Mean |ρ| over strata (each stratum one backbone × dataset × ...):", "",
                  markdown_table(over.reset_index(), 3), ""]
    return lines + output.notes


def figure(output: Output, path: Path) -> Path | None:
    """Signals sorted by |ρ| with their bootstrap CIs, one panel per stratum."""
    detail = output.detail
    if detail is None or detail.empty:
        return None
    strata = sorted(detail["strata"].unique())[:6]
    height = 0.3 * detail.groupby("strata").size().max() + 1.5
    fig, nrows, ncols = panels(len(strata), 5.0, height)
    for i, stratum in enumerate(strata):
        group = detail[detail["strata"] == stratum].sort_values("abs_rho")
        ax = fig.add_subplot(nrows, ncols, i + 1)
        y = np.arange(len(group))
        lo = (group["abs_rho"] - group["abs_rho_ci_low"]).clip(lower=0).fillna(0)
        hi = (group["abs_rho_ci_high"] - group["abs_rho"]).clip(lower=0).fillna(0)
        ax.errorbar(group["abs_rho"], y, xerr=[lo, hi], fmt="o", ms=4, color="tab:blue", ecolor="grey")
        ax.set_yticks(y, group["signal"], fontsize=7)
        ax.set(xlim=(0, 1.05), xlabel="|ρ| with the target, 95% cell-bootstrap CI", title=panel_title(stratum))
    return save(fig, path)


PREDICTORS = Family("predictors", SPANS, run_predictors,
                    "Spearman ρ of a drift signal with the target, arms pooled; cell-bootstrap CI of |ρ|",
                    section, figure)

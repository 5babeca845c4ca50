"""early_warning: does a signal read at epoch k already tell which runs will lose their zero-shot skill?

Per stratum, signal and epoch k: Spearman ρ(signal at k, final target) and the AUC for
separating damaged runs (final target below the damage threshold, 50% retention by default)
from healthy ones, with the signal oriented so that larger means more drift (+x for weight /
embedding drift, |Δ| and log10 lr; −x for CKA; a signed Δ or the train loss by the sign of its
final correlation with the target). Both at run level and over cell means (seeds averaged).
AUC = U / (n_damaged · n_healthy) with its exact relabelling p (permutation.rank_sum_test).
Values at epoch k come from the MLflow metric history or a CSV's per-epoch columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.families.common import Family, Inputs, Output, chosen_arms, fmt, row
from analysis.figures import panel_title, panels, save
from analysis.markdown import capital, markdown_table, where
from analysis.permutation import rank_sum_test, spearman, spearman_test
from analysis.signals import Signal
from analysis.strata import ARM, LR, SEED, cell_ids, stratify

SPANS = (ARM, LR, SEED)
LEVELS = ("runs", "cell means")


def orientation(signal: Signal, x: np.ndarray, y: np.ndarray) -> int:
    """+1 if larger x means more drift (so, expected damage), −1 if less; undeclared: from ρ(x, y)."""
    if signal.direction:
        return signal.direction
    ok = np.isfinite(x) & np.isfinite(y)
    rho = float(spearman(x[ok], y[ok])) if ok.sum() >= 3 else np.nan
    return -1 if rho > 0 else 1  # retention falling as x rises: x reads as drift


def _level(x: np.ndarray, y: np.ndarray, sign: int, threshold: float) -> dict | None:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    rho = spearman_test(x, y)
    if rho is None:
        return None
    damaged = y < threshold
    auc = rank_sum_test(sign * x[damaged], sign * x[~damaged])
    return {"n": len(x), "n_damaged": int(damaged.sum()), "rho": rho, "auc": auc}


def _cell_means(cells: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    frame = pd.DataFrame({f"v{i}": v for i, v in enumerate(values)}).assign(cell=cells)
    means = frame.groupby("cell").mean()
    return [means[f"v{i}"].to_numpy(float) for i in range(len(values))]


def _signal_rows(strata: str, rows: pd.DataFrame, signal: Signal, inputs: Inputs, y: np.ndarray,
                 cells: np.ndarray) -> tuple[list[dict], list[dict]]:
    tests, detail = [], []
    sign = orientation(signal, signal.values(rows), y)
    available = signal.epochs(rows)
    for k in inputs.epochs:
        if available is not None and k not in available:
            continue
        x = signal.values(rows, epoch=k)
        for level, (xs, ys) in zip(LEVELS, ((x, y), _cell_means(cells, x, y))):
            found = _level(xs, ys, sign, inputs.damage_threshold)
            if found is None:
                continue
            auc = found["auc"]
            detail.append({"strata": strata, "signal": signal.name, "epoch": k, "level": level, "n": found["n"],
                           "n_damaged": found["n_damaged"], "orientation": sign, "rho": found["rho"].statistic,
                           "rho_p": found["rho"].p_value, "auc": auc.statistic if auc else np.nan,
                           "auc_p": auc.p_value if auc else np.nan})
            suffix = "" if level == "runs" else ", cell means"
            tests.append(row("early_warning", strata, rows, inputs.target, found["n"], found["rho"].statistic,
                             found["rho"], a=signal.name, b=f"epoch {k}: ρ{suffix}"))
            if auc is not None:
                tests.append(row("early_warning", strata, rows, inputs.target, found["n"], auc.statistic, auc,
                                 effect_size=float(found["n_damaged"]), a=signal.name, b=f"epoch {k}: AUC{suffix}"))
    return tests, detail


def run_early_warning(inputs: Inputs) -> Output:
    if inputs.target is None:
        return Output([], notes=["No target column (zero-shot retention): nothing to warn of."])
    if not inputs.epochs:
        return Output([], notes=["The table has no per-epoch values (MLflow metric history; for a CSV, "
                                 "`epoch<k>_` columns or a long table with an `epoch` column)."])
    tests, detail = [], []
    for strata, stratum in stratify(inputs.table, SPANS):
        rows = chosen_arms(stratum, inputs.methods).reset_index(drop=True)
        y = pd.to_numeric(rows[inputs.target], errors="coerce").to_numpy(float)
        cells = cell_ids(rows)
        for signal in inputs.signals:
            found_tests, found_detail = _signal_rows(strata, rows, signal, inputs, y, cells)
            tests += found_tests
            detail += found_detail
    notes = ["Signals without a declared direction (a signed Δ, the train loss) are oriented by the sign of "
             "their final correlation with the target, which flatters their AUC."]
    return Output(tests, pd.DataFrame(detail), notes)


def _table(group: pd.DataFrame) -> pd.DataFrame:
    runs = group[group["level"] == "runs"]
    cells = group[group["level"] == "cell means"].set_index(["signal", "epoch"])
    out = {}
    for (signal, epoch), r in runs.set_index(["signal", "epoch"]).iterrows():
        cell_auc = cells["auc"].get((signal, epoch), np.nan)
        out.setdefault(signal, {})[f"AUC@{epoch} (cells)"] = f"{fmt(r['auc'])} ({fmt(cell_auc)})"
        out[signal][f"ρ@{epoch}"] = fmt(r["rho"])
    first = min(runs["epoch"])
    order = runs[runs["epoch"] == first].sort_values("auc", ascending=False)["signal"]
    return pd.DataFrame.from_dict(out, orient="index").reindex(order).reset_index(names="signal")


def section(tests: pd.DataFrame, output: Output, inputs: Inputs) -> list[str]:
    detail = output.detail
    if detail is None or detail.empty:
        return [f"No early-warning signal could be read against {inputs.target or 'a target'}.", *output.notes]
    lines = []
    for strata, group in detail.groupby("strata", sort=True):
        runs = group[(group["level"] == "runs")]
        first = int(runs["epoch"].min())
        at_first = runs[runs["epoch"] == first]
        damaged = int(at_first["n_damaged"].max())
        # The lead names a signal whose orientation was declared, not read off the outcome, where there is one.
        declared = at_first[at_first["signal"].isin([s.name for s in inputs.signals if s.direction])]
        candidates = declared if declared["auc"].notna().any() else at_first
        if candidates["auc"].notna().any():
            best = candidates.loc[candidates["auc"].idxmax()]
            lines.append(capital(f"{where(strata)}at epoch {first}, {best['signal']} already separates the runs "
                                 f"that end damaged ({inputs.target} < {inputs.damage_threshold:g}: {damaged} of "
                                 f"{best['n']}) from the healthy ones with AUC {best['auc']:.2f} (exact p = "
                                 f"{fmt(best['auc_p'])}); its ρ with the final value is {best['rho']:.2f}."))
        else:
            lines.append(capital(f"{where(strata)}{damaged} of {int(at_first['n'].max())} runs end damaged "
                                 f"({inputs.target} < {inputs.damage_threshold:g}): no AUC, only ρ."))
        lines += ["", markdown_table(_table(group)), ""]
    return lines + output.notes


def figure(output: Output, path: Path) -> Path | None:
    """Run-level AUC by epoch for the five signals with the best AUC anywhere, one panel per stratum."""
    detail = output.detail
    if detail is None or detail.empty or detail["auc"].notna().sum() == 0:
        return None
    runs = detail[detail["level"] == "runs"]
    strata = sorted(runs["strata"].unique())[:6]
    fig, nrows, ncols = panels(len(strata), 4.6, 3.6)
    for i, stratum in enumerate(strata):
        group = runs[runs["strata"] == stratum]
        top = group.groupby("signal")["auc"].max().sort_values(ascending=False).index[:5]
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for signal in top:
            line = group[group["signal"] == signal].sort_values("epoch")
            ax.plot(line["epoch"], line["auc"], "-o", ms=3, label=signal)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(ylim=(0, 1.02), xlabel="epoch k", ylabel="AUC for damage (oriented)", title=panel_title(stratum))
        ax.legend(fontsize=6)
    return save(fig, path)


EARLY_WARNING = Family("early_warning", SPANS, run_early_warning,
                       "a signal at epoch k vs the final target: ρ, and AUC for damaged vs healthy runs",
                       section, figure)

"""PNG figures of a sweep; each function skips (returns None) when its columns are absent.

Figures follow the families' strata: one panel per stratum (backbone, dataset, ... held
fixed; analysis/strata.py), one line or colour per arm, so no panel pools what a test keeps
apart. Figures are built on `matplotlib.figure.Figure` directly, never pyplot, so no display
or global backend is touched and the module is safe inside servers and worker processes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.schema import SUPPORT_CHANGE_METRICS
from analysis.strata import ARM, LR, NO_STRATA, SEED, arm_labels, stratify
from trainables import keys
from trainables.keys import is_retention

_MAX_PANELS = 6
SPANS = (ARM, LR, SEED)  # what a panel shows varying; everything else is its stratum


def _colours(methods) -> dict[str, tuple]:
    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(map(str, methods)))}


def panels(n: int, width: float, height: float) -> tuple[Figure, int, int]:
    """A figure for n panels, at most three per row so many datasets or metrics stay legible."""
    cols = min(n, 3)
    rows = -(-n // cols)
    return Figure(figsize=(width * cols, height * rows)), rows, cols


def panel_title(stratum: str) -> str:
    return "all trials" if stratum == NO_STRATA else stratum


def save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def safe_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", metric).strip("_")


def key_metrics(metrics: list[str]) -> list[str]:
    """Accuracy (test before val), up to three retention metrics, then Δentropy, when present."""
    acc = [m for m in (keys.TEST_ACC, keys.VAL_ACC) if m in metrics] or [m for m in metrics if "acc" in m.lower()]
    retention = [m for m in metrics if is_retention(m)][:3]
    entropy = [m for m in (keys.attn_delta("entropy"),) if m in metrics]
    return acc[:1] + retention + entropy


def _strata(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return list(stratify(table, SPANS))[:_MAX_PANELS]


def plot_metric_vs_lr(table: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """Mean over seeds per lr and arm, min-max band, every trial as a dot; one panel per stratum."""
    if LR not in table.columns or table[LR].nunique() < 2 or table[metric].notna().sum() == 0:
        return None
    strata = _strata(table)
    colours = _colours(with_arm_labels(table))
    fig, nrows, ncols = panels(len(strata), 4.2, 3.4)
    for i, (label, rows) in enumerate(strata):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for arm, group in rows.groupby(ARM):
            stats = group.groupby(LR)[metric].agg(["mean", "min", "max"]).dropna()
            c = colours[str(arm)]
            ax.plot(stats.index, stats["mean"], "-o", color=c, label=str(arm), ms=4)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=c, alpha=0.15)
            ax.scatter(group[LR], group[metric], color=c, s=8, alpha=0.5)
        ax.set_xscale("log")
        ax.set(title=panel_title(label), xlabel="learning rate", ylabel=metric)
        ax.legend(fontsize=7)
    return save(fig, path)


def with_arm_labels(table: pd.DataFrame) -> list[str]:
    """Every arm of the table (method + knobs), for one colour per arm across panels."""
    return sorted(set(arm_labels(table)))


def plot_paired_differences(tests: pd.DataFrame, path: Path, alpha: float = 0.05) -> Path | None:
    """Forest plot of paired effects mean(a - b) with bootstrap CIs, one panel per metric."""
    paired = tests[tests["family"] == "paired"]
    if paired.empty:
        return None
    metrics = list(dict.fromkeys(paired["metric"]))[:_MAX_PANELS]
    height = max(2.5, 0.35 * paired.groupby("metric").size().max() + 1.2)
    fig, nrows, ncols = panels(len(metrics), 5.0, height)
    for i, metric in enumerate(metrics):
        rows = paired[paired["metric"] == metric].reset_index(drop=True)
        ax = fig.add_subplot(nrows, ncols, i + 1)
        y = np.arange(len(rows))
        lo = (rows["effect"] - rows["ci_low"]).clip(lower=0).fillna(0)
        hi = (rows["ci_high"] - rows["effect"]).clip(lower=0).fillna(0)
        sig = rows["p_adjusted"] < alpha
        ax.errorbar(rows["effect"], y, xerr=[lo, hi], fmt="none", ecolor="grey")
        ax.scatter(rows["effect"], y, c=np.where(sig, "tab:red", "tab:blue"), zorder=3, s=18)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [f"{r.a} − {r.b}" + ("" if r.strata == "all" else f" [{r.strata}]")
                          for r in rows.itertuples()], fontsize=7)
        ax.set(title=metric, xlabel=f"mean paired difference (red: Holm p < {alpha:g})")
    return save(fig, path)


def plot_retention_vs_entropy(table: pd.DataFrame, path: Path) -> Path | None:
    """The first zero-shot retention against Δentropy, one panel per stratum, colour = arm."""
    change = next((m for m in SUPPORT_CHANGE_METRICS if m in table.columns), None)
    retention = next((m for m in table.columns if is_retention(m)), None)
    if change is None or retention is None:
        return None
    strata = _strata(table)
    colours = _colours(with_arm_labels(table))
    fig, nrows, ncols = panels(len(strata), 4.2, 3.6)
    for i, (label, rows) in enumerate(strata):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for arm, group in rows.groupby(ARM):
            ax.scatter(group[change], group[retention], color=colours[str(arm)], s=16, alpha=0.8, label=str(arm))
        ax.set(xlabel=change, ylabel=retention, title=panel_title(label))
        ax.legend(fontsize=6)
    return save(fig, path)


def _layer_columns(columns, kind: str, metric: str) -> dict[int, str]:
    """{layer: column} of the per-layer keys of one metric (e.g. `attn`, `entropy`), in layer order."""
    found = {layer: c for c in columns if (layer := keys.layer_of(str(c), kind, metric)) is not None}
    return dict(sorted(found.items()))


def plot_entropy_by_layer(table: pd.DataFrame, path: Path) -> Path | None:
    """Mean attention entropy per layer after fine-tuning, per arm, one panel per stratum."""
    after = _layer_columns(table.columns, "attn", "entropy")
    if not after:
        return None
    strata = _strata(table)
    colours = _colours(with_arm_labels(table))
    fig, nrows, ncols = panels(len(strata), 4.2, 3.4)
    for i, (label, rows) in enumerate(strata):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for arm, group in rows.groupby(ARM):
            ax.plot(list(after), group[list(after.values())].mean().to_numpy(), "-o", ms=3,
                    color=colours[str(arm)], label=f"{arm} (after)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=panel_title(label), xlabel="layer", ylabel="attention entropy")
        ax.legend(fontsize=7)
    return save(fig, path)


def plot_pareto(table: pd.DataFrame, front: pd.DataFrame, objectives: dict[str, str], path: Path) -> Path | None:
    """All trials and the Pareto front (column `strata`) on the first two objectives, one panel per stratum."""
    x, y = list(objectives)[:2]
    strata = _strata(table)
    colours = _colours(with_arm_labels(table))
    fig, nrows, ncols = panels(len(strata), 4.6, 4.0)
    for i, (label, rows) in enumerate(strata):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for arm, group in rows.groupby(ARM):
            ax.scatter(group[x], group[y], color=colours[str(arm)], s=14, alpha=0.6, label=str(arm))
        ordered = front[front["strata"] == label].sort_values(x)
        ax.plot(ordered[x], ordered[y], "k-", lw=1)
        ax.scatter(ordered[x], ordered[y], facecolors="none", edgecolors="black", s=60, label="Pareto front")
        ax.set(xlabel=f"{x} ({objectives[x]})", ylabel=f"{y} ({objectives[y]})", title=panel_title(label))
        ax.legend(fontsize=7)
    return save(fig, path)


def write_figures(table: pd.DataFrame, tests: pd.DataFrame, metrics: list[str], out_dir: Path,
                  alpha: float = 0.05) -> list[Path]:
    """Every figure whose inputs exist; returns the paths written."""
    if table.empty:
        return []
    paths = [plot_metric_vs_lr(table, m, out_dir / f"lr_{safe_name(m)}.png") for m in key_metrics(metrics)]
    paths.append(plot_paired_differences(tests, out_dir / "paired_differences.png", alpha))
    paths.append(plot_retention_vs_entropy(table, out_dir / "retention_vs_entropy.png"))
    paths.append(plot_entropy_by_layer(table, out_dir / "entropy_by_layer.png"))
    return [p for p in paths if p is not None]

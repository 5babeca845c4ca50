"""What every test family shares: its declaration, its inputs and output, and the rows of tests.csv.

A family is one `Family` value: its name, the factors it spans (varies on purpose; every other
varying factor is held fixed, see analysis/strata.py), a `run` from `Inputs` to `Output`, and
optionally its own report section and figure. Register it in analysis/families/__init__.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis.permutation import PermResult, bootstrap_ci, spearman, spearman_test
from analysis.signals import Signal

# tests.csv: one row per test. scope: confirmatory | exploratory; strata: the values the family
# held fixed; p_adjusted: Holm within the row's scope (confirmatory: all declared contrasts
# together; exploratory: its family), holm_m: how many tests that Holm family held.
TEST_COLUMNS: tuple[str, ...] = (
    "family", "scope", "strata", "dataset", "method", "metric", "a", "b", "n", "effect", "effect_size",
    "ci_low", "ci_high", "statistic", "p_value", "p_adjusted", "holm_m", "exact", "p_min", "resolvable",
)


@dataclass
class Inputs:
    """Everything a family reads, resolved and validated by analysis/inputs.py."""

    table: pd.DataFrame  # completed trials, tidy
    metrics: list[str]  # the metrics paired / dose / association / unpaired test
    target: str | None  # what the signal families explain (None: the table has none)
    signals: list[Signal] = field(default_factory=list)
    reference: Signal | None = None
    methods: list[str] | None = None  # arms or methods the signal families pool (None: all)
    epochs: list[int] = field(default_factory=list)  # early warning
    damage_threshold: float = 50.0
    margins: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 5.0])
    alpha: float = 0.05


@dataclass
class Output:
    rows: list[dict]  # tests.csv rows (TEST_COLUMNS but scope / p_adjusted / holm_m / resolvable)
    detail: pd.DataFrame | None = None  # written as <family>.csv
    notes: list[str] = field(default_factory=list)  # what the family could not do, for the report


@dataclass(frozen=True)
class Family:
    name: str
    spans: tuple[str, ...]
    run: Callable[[Inputs], Output]
    summary: str  # what one row tests, for the report
    section: Callable[[pd.DataFrame, Output, Inputs], list[str]] | None = None  # rows after Holm
    figure: Callable[[Output, Path], Path | None] | None = None


def dataset_of(rows: pd.DataFrame) -> str:
    values = rows["dataset"].astype(str).unique() if "dataset" in rows.columns else []
    return str(values[0]) if len(values) == 1 else ""


def arm_of(rows: pd.DataFrame) -> str:
    values = rows["arm"].astype(str).unique() if "arm" in rows.columns else []
    return str(values[0]) if len(values) == 1 else ""


def safe_ratio(num: float, den: float) -> float:
    return num / den if den > 0 and np.isfinite(den) else math.nan


def row(family: str, strata: str, rows: pd.DataFrame, metric: str, n: int, effect: float,
        result: PermResult | None, effect_size: float = math.nan, ci: tuple[float, float] = (math.nan, math.nan),
        method: str = "", a: str = "", b: str = "", **extra) -> dict:
    """One tests.csv row; a statistic with no p-value passes result=None (p is then NaN, left out of Holm)."""
    out = {"family": family, "strata": strata, "dataset": dataset_of(rows), "method": method, "metric": metric,
           "a": a, "b": b, "n": int(n), "effect": effect, "effect_size": effect_size, "ci_low": ci[0],
           "ci_high": ci[1], "statistic": result.statistic if result else effect,
           "p_value": result.p_value if result else math.nan, "exact": bool(result.exact) if result else True,
           "p_min": result.p_min if result else math.nan}
    return {**out, **extra}


def finite_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def spearman_row(family: str, strata: str, rows: pd.DataFrame, metric: str, x: np.ndarray, y: np.ndarray,
                 method: str = "", a: str = "", b: str = "") -> dict | None:
    """Spearman ρ(x, y) with its permutation p and a bootstrap CI; None when either side is constant."""
    x, y = finite_pairs(np.asarray(x, float), np.asarray(y, float))
    result = spearman_test(x, y)
    if result is None:
        return None
    ci = bootstrap_ci((x, y), spearman, paired=True)
    return row(family, strata, rows, metric, len(x), result.statistic, result, ci=ci, method=method, a=a, b=b)


def chosen_arms(rows: pd.DataFrame, methods: list[str] | None) -> pd.DataFrame:
    """The trials of the arms or methods a signal family pools (all when `methods` is None)."""
    if not methods:
        return rows
    return rows[rows["arm"].astype(str).isin(methods) | rows["method"].astype(str).isin(methods)]


def fmt(value: float, digits: int = 2) -> str:
    """A number for a sentence: 2 significant digits by default, '–' when missing."""
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"

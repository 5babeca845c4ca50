"""The four test families, each producing rows of `tests.csv`, Holm-corrected per family.

- paired: methods compared cell by cell (same lr, seed, ...) with a sign-flip test;
- dose: Spearman ρ of each metric against log10(lr) (and gta_lambda) per dataset and method;
- association: Spearman ρ between attention-support change and zero-shot retention;
- unpaired: two-sample test for method pairs whose cells do not match.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from analysis.matching import MethodPair, matched_cells, method_pairs
from analysis.permutation import (PermResult, bootstrap_ci, holm, mean, mean_difference, sign_flip_test, spearman,
                                  spearman_test, two_sample_test)
from analysis.schema import SUPPORT_CHANGE_METRICS
from trainables.keys import is_retention

TEST_COLUMNS: tuple[str, ...] = (
    "family", "dataset", "method", "metric", "a", "b", "n", "effect", "effect_size",
    "ci_low", "ci_high", "statistic", "p_value", "p_adjusted", "exact", "p_min", "resolvable",
)

# Dose factors: column -> (label in column `a`, transform). lr acts multiplicatively.
DOSE_FACTORS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "lr": ("log10(lr)", np.log10),
    "gta_lambda": ("gta_lambda", lambda v: v),
}

# Pairs with fewer matched cells than this are compared as unpaired samples instead.
MIN_MATCHED_CELLS = 2


def _row(family: str, dataset: str, metric: str, n: int, effect: float, effect_size: float,
         ci: tuple[float, float], result: PermResult, method: str = "", a: str = "", b: str = "") -> dict:
    return {"family": family, "dataset": dataset, "method": method, "metric": metric, "a": a, "b": b,
            "n": n, "effect": effect, "effect_size": effect_size, "ci_low": ci[0], "ci_high": ci[1],
            "statistic": result.statistic, "p_value": result.p_value, "exact": result.exact,
            "p_min": result.p_min}


def _safe_ratio(num: float, den: float) -> float:
    return num / den if den > 0 and np.isfinite(den) else math.nan


# ---- paired -------------------------------------------------------------------------------

def _paired_rows(dataset: str, pair: MethodPair, metrics: list[str]) -> Iterator[dict]:
    for metric in metrics:
        cells = matched_cells(pair, metric)
        if len(cells) < MIN_MATCHED_CELLS:
            continue
        d = (cells["a"] - cells["b"]).to_numpy(dtype=float)
        if not d.any():  # identical arms carry no evidence and would only inflate Holm's m
            continue
        result = sign_flip_test(d)
        sd = float(np.std(d, ddof=1))
        row = _row("paired", dataset, metric, len(d), float(d.mean()), _safe_ratio(float(d.mean()), sd),
                   bootstrap_ci((d,), mean), result, a=pair.a, b=pair.b)
        yield {**row, "matched_on": " and ".join(pair.keys)}  # for the report's sentences


def paired_family(table: pd.DataFrame, metrics: list[str]) -> list[dict]:
    rows = []
    for dataset, data in table.groupby("dataset", sort=True):
        for pair in method_pairs(data):
            rows.extend(_paired_rows(str(dataset), pair, metrics))
    return rows


# ---- unpaired -----------------------------------------------------------------------------

def _is_unmatched(pair: MethodPair, metrics: list[str]) -> bool:
    return all(len(matched_cells(pair, m)) < MIN_MATCHED_CELLS for m in metrics)


def _unpaired_rows(dataset: str, a: str, b: str, ra: pd.DataFrame, rb: pd.DataFrame,
                   metrics: list[str]) -> Iterator[dict]:
    for metric in metrics:
        xa, xb = ra[metric].dropna().to_numpy(float), rb[metric].dropna().to_numpy(float)
        result = two_sample_test(xa, xb)
        if result is None:
            continue
        dof = len(xa) + len(xb) - 2
        pooled = math.sqrt(((len(xa) - 1) * np.var(xa, ddof=1) + (len(xb) - 1) * np.var(xb, ddof=1)) / dof) \
            if dof > 0 and len(xa) > 1 and len(xb) > 1 else math.nan
        effect = float(xa.mean() - xb.mean())
        yield _row("unpaired", dataset, metric, len(xa) + len(xb), effect, _safe_ratio(effect, pooled),
                   bootstrap_ci((xa, xb), mean_difference), result, a=a, b=b)


def unpaired_family(table: pd.DataFrame, metrics: list[str]) -> list[dict]:
    """Method pairs (whole methods, not arms) none of whose arm pairs match cell by cell."""
    rows = []
    for dataset, data in table.groupby("dataset", sort=True):
        unmatched: dict[tuple[str, str], bool] = {}
        for pair in method_pairs(data):
            key = (pair.rows_a["method"].iat[0], pair.rows_b["method"].iat[0])
            unmatched[key] = unmatched.get(key, True) and _is_unmatched(pair, metrics)
        for (ma, mb), is_unmatched in unmatched.items():
            if is_unmatched:
                ra, rb = data[data["method"] == ma], data[data["method"] == mb]
                rows.extend(_unpaired_rows(str(dataset), ma, mb, ra, rb, metrics))
    return rows


# ---- Spearman families --------------------------------------------------------------------

def _spearman_row(family: str, dataset: str, metric: str, x: np.ndarray, y: np.ndarray,
                  method: str = "", a: str = "") -> dict | None:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    result = spearman_test(x, y)
    if result is None:
        return None
    ci = bootstrap_ci((x, y), spearman, paired=True)
    return _row(family, dataset, metric, len(x), result.statistic, math.nan, ci, result, method=method, a=a)


def dose_family(table: pd.DataFrame, metrics: list[str]) -> list[dict]:
    rows = []
    for (dataset, method), data in table.groupby(["dataset", "method"], sort=True):
        for column, (label, transform) in DOSE_FACTORS.items():
            if column not in data.columns or data[column].dropna().nunique() < 2:
                continue
            raw = pd.to_numeric(data[column], errors="coerce").to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = transform(raw)
            for metric in metrics:
                row = _spearman_row("dose", str(dataset), metric, x, data[metric].to_numpy(float),
                                    method=str(method), a=label)
                rows.extend([row] if row else [])
    return rows


def association_family(table: pd.DataFrame, metrics: list[str]) -> list[dict]:
    support = [m for m in SUPPORT_CHANGE_METRICS if m in metrics]
    retention = [m for m in metrics if is_retention(m)]
    rows = []
    for dataset, data in table.groupby("dataset", sort=True):
        for change in support:
            for kept in retention:
                row = _spearman_row("association", str(dataset), kept, data[change].to_numpy(float),
                                    data[kept].to_numpy(float), a=change)
                rows.extend([row] if row else [])
    return rows


FAMILY_RUNNERS: dict[str, Callable[[pd.DataFrame, list[str]], list[dict]]] = {
    "paired": paired_family,
    "dose": dose_family,
    "association": association_family,
    "unpaired": unpaired_family,
}


def run_families(table: pd.DataFrame, metrics: list[str], families: list[str], alpha: float) -> pd.DataFrame:
    """All requested families on completed trials; Holm within each family; one row per test.

    Columns are TEST_COLUMNS plus `matched_on` (the grid keys of paired rows), which the
    report uses and tests.csv leaves out.
    """
    columns = list(TEST_COLUMNS) + ["matched_on"]
    frames = []
    for family in families:
        rows = pd.DataFrame(FAMILY_RUNNERS[family](table, metrics), columns=columns)
        rows["p_adjusted"] = holm(rows["p_value"].to_numpy(float)) if len(rows) else []
        frames.append(rows)
    frames = [f for f in frames if len(f)]  # concat of empty frames muddles the dtypes
    tests = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    tests["resolvable"] = tests["p_min"].astype(float) <= alpha
    tests["exact"] = tests["exact"].astype(bool)
    tests["matched_on"] = tests["matched_on"].map(lambda v: v if isinstance(v, str) else "")
    return tests[columns]

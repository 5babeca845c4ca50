"""Permutation tests, their resolution, bootstrap intervals and Holm's correction.

All resampling is scipy's (`permutation_test`, `bootstrap`); this module only chooses
exact enumeration vs Monte Carlo, works out `p_min` (the smallest two-sided p a design
can produce; a test whose p_min exceeds alpha can never be significant, however large
the effect) and wraps degenerate inputs so callers get NaN instead of warnings.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

MAX_EXACT = 100_000  # enumerate every permutation up to this many, else Monte Carlo
MC_RESAMPLES = 99_999  # Monte Carlo draws: p resolution 1/(N+1) one-sided, 2/(N+1) two-sided
BOOT_RESAMPLES = 9_999
SEED = 0  # fixed so that reruns of the analysis give identical p-values and intervals


@dataclass(frozen=True)
class PermResult:
    statistic: float
    p_value: float
    exact: bool
    p_min: float  # smallest two-sided p this test, as run, could have returned
    n_permutations: int  # enumerated (exact) or drawn (Monte Carlo)


def _run(data: tuple, statistic: Callable, kind: str, n_distinct: float, design_p_min: float) -> PermResult:
    exact = n_distinct <= MAX_EXACT
    result = stats.permutation_test(
        data, statistic, permutation_type=kind, vectorized=True, alternative="two-sided",
        n_resamples=np.inf if exact else MC_RESAMPLES, rng=SEED)
    # Monte Carlo p is (k + 1) / (N + 1) per side, so it cannot go below 2 / (N + 1).
    p_min = design_p_min if exact else max(design_p_min, 2.0 / (MC_RESAMPLES + 1))
    return PermResult(float(result.statistic), float(result.pvalue), exact, min(1.0, p_min),
                      int(len(result.null_distribution)))


# ---- vectorised statistics (scipy calls them on stacks of resamples along `axis`) -------------

def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman ρ of paired samples x, y (Pearson correlation of their ranks); NaN for a constant sample."""
    rx, ry = stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant resamples give NaN
        return (rx * ry).sum(axis) / np.sqrt((rx ** 2).sum(axis) * (ry ** 2).sum(axis))


# ---- sign-flip (paired) -------------------------------------------------------------------

def sign_flip_p_min(d: np.ndarray) -> float:
    """2 / 2^k with k non-zero differences: only 'all signs as observed' reaches the extreme."""
    k = int(np.count_nonzero(np.asarray(d, dtype=float)))
    return min(1.0, 2.0 / 2.0 ** k)


def sign_flip_test(d: np.ndarray) -> PermResult:
    """Paired test on per-cell differences d = a - b: statistic mean(d), signs flipped at random."""
    d = np.asarray(d, dtype=float)
    return _run((d,), mean, "samples", 2.0 ** len(d), sign_flip_p_min(d))


# ---- Spearman (pairings) ------------------------------------------------------------------

def _count_comonotone(a: list[int], b: list[int]) -> int:
    """#permutations giving the comonotone table of group sizes a (rows) and b (columns).

    The comonotone (north-west corner) table is the unique maximiser of Σ rank_x·rank_y, and
    a table N with margins a, b is produced by ∏a!∏b!/∏N! permutations (exact integers).
    """
    a, b = list(a), list(b)
    count = math.prod(math.factorial(v) for v in a) * math.prod(math.factorial(v) for v in b)
    i = j = 0
    while i < len(a) and j < len(b):
        cell = min(a[i], b[j])
        count //= math.factorial(cell)
        a[i] -= cell
        b[j] -= cell
        i += a[i] == 0
        j += b[j] == 0
    return count


def spearman_p_min(x: np.ndarray, y: np.ndarray) -> float:
    """Smallest two-sided p of a permutation Spearman test; 2/n! without ties (4 points -> 1/12)."""
    a = [int(v) for v in np.unique(np.asarray(x), return_counts=True)[1]]
    b = [int(v) for v in np.unique(np.asarray(y), return_counts=True)[1]]
    extreme = min(_count_comonotone(a, b), _count_comonotone(a, b[::-1]))
    return min(1.0, 2 * extreme / math.factorial(len(x)))


def spearman_test(x: np.ndarray, y: np.ndarray) -> PermResult | None:
    """Spearman ρ(x, y) with a pairings permutation p; None when x or y is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx = stats.rankdata(x)
    rx = rx - rx.mean()
    ry = stats.rankdata(y)  # ρ = Pearson of ranks; permuting y permutes its ranks, so rank once

    def rho(r: np.ndarray, axis: int = -1) -> np.ndarray:
        r = np.moveaxis(r, axis, -1)
        rc = r - r.mean(-1, keepdims=True)
        return (rc * rx).sum(-1) / np.sqrt((rc ** 2).sum(-1) * (rx ** 2).sum())

    # One sample with 'pairings' permutes its order against the fixed x: n! arrangements.
    return _run((ry,), rho, "pairings", float(math.factorial(len(x))), spearman_p_min(x, y))


# ---- two-sample (independent) -------------------------------------------------------------

def two_sample_p_min(a: np.ndarray, b: np.ndarray) -> float:
    """2 / C(n_a + n_b, n_a) without ties; ties at the split widen the extreme."""
    pooled = np.concatenate([np.asarray(a, float), np.asarray(b, float)])
    n, k = len(pooled), len(a)
    total = math.comb(n, k)

    def extreme_count(values: np.ndarray) -> int:
        edge = values[k - 1]
        above, tied = int(np.sum(values > edge)), int(np.sum(values == edge))
        return math.comb(tied, k - above)

    ways = min(extreme_count(np.sort(pooled)[::-1]), extreme_count(-np.sort(pooled)))
    return min(1.0, 2.0 * ways / total)


def two_sample_test(a: np.ndarray, b: np.ndarray) -> PermResult | None:
    """Mean difference mean(a) - mean(b), group labels permuted; None if a group has fewer than 2 values
    (scipy needs two per sample, and one value against a few allows too few arrangements to test)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    return _run((a, b), mean_difference, "independent", float(math.comb(len(a) + len(b), len(a))),
                two_sample_p_min(a, b))


# ---- rank-sum (AUC) -------------------------------------------------------------------------

MAX_RANK_SUM_N = 200  # exact rank-sum distribution up to this many values (a DP over rank sums)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half: U / (n₊ n₋) (Mann-Whitney U of `positive`)."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    return float(stats.mannwhitneyu(positive, negative).statistic) / (len(positive) * len(negative))


def _rank_sum_counts(doubled_ranks: np.ndarray, k: int) -> np.ndarray:
    """counts[s] = how many k-subsets of the values have doubled-rank sum s (float counts)."""
    top = int(doubled_ranks.sum())
    counts = np.zeros((k + 1, top + 1))
    counts[0, 0] = 1.0
    for r in doubled_ranks.astype(int):
        # Each value joins the subsets built so far; going down in size uses every value once.
        counts[1:, r:] += counts[:-1, : top + 1 - r].copy()
    return counts[k]


def rank_sum_test(positive: np.ndarray, negative: np.ndarray) -> PermResult | None:
    """AUC of `positive` over `negative` with the exact two-sided p of relabelling (mid-ranks for ties).

    Every C(n, n₊) labelling is counted through the distribution of the rank sum (a dynamic
    programme over doubled mid-ranks, integers, so ties stay exact); equivalent to enumerating
    the labellings with the Mann-Whitney U as statistic. Monte Carlo past MAX_RANK_SUM_N values.
    None when a group is empty or every value is tied.
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    pooled = np.concatenate([positive, negative])
    if len(positive) == 0 or len(negative) == 0 or np.ptp(pooled) == 0:
        return None
    if len(pooled) > MAX_RANK_SUM_N:
        ranks = stats.rankdata(pooled)
        result = two_sample_test(ranks[: len(positive)], ranks[len(positive):])
        return None if result is None else PermResult(auc(positive, negative), result.p_value, False,
                                                      result.p_min, result.n_permutations)
    doubled = np.rint(2 * stats.rankdata(pooled)).astype(int)
    k, n = len(positive), len(pooled)
    counts = _rank_sum_counts(doubled, k)
    sums = np.flatnonzero(counts)
    centre = k * (n + 1)  # the expected doubled rank sum, an integer
    deviation = np.abs(sums - centre)
    observed = abs(int(doubled[:k].sum()) - centre)
    weights = counts[sums] / counts[sums].sum()
    p = float(weights[deviation >= observed].sum())
    p_min = float(weights[deviation >= deviation.max()].sum())
    return PermResult(auc(positive, negative), min(1.0, p), True, min(1.0, p_min), math.comb(n, k))


# ---- bootstrap and Holm -------------------------------------------------------------------

def bootstrap_ci(data: tuple[np.ndarray, ...], statistic: Callable, paired: bool = False,
                 level: float = 0.95) -> tuple[float, float]:
    """scipy BCa interval (percentile if BCa degenerates); NaNs when n < 3 or data are constant."""
    data = tuple(np.asarray(d, dtype=float) for d in data)
    if any(len(d) < 3 for d in data) or all(np.ptp(d) == 0 for d in data):
        return math.nan, math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            # Degenerate resamples (all-equal ranks, say) only matter through the NaN we check.
            warnings.simplefilter("ignore")
            try:
                ci = stats.bootstrap(data, statistic, n_resamples=BOOT_RESAMPLES, paired=paired,
                                     vectorized=True, confidence_level=level, method=method,
                                     rng=SEED).confidence_interval
            except (ValueError, FloatingPointError, ZeroDivisionError):
                continue
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            return float(ci.low), float(ci.high)
    return math.nan, math.nan


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values; NaNs stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    # The i-th smallest p is multiplied by (m - i); the running max keeps the order monotone.
    steps = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted

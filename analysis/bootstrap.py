"""Cell-resampled bootstrap of Spearman ρ, for the predictors family.

Trials of one cell (same arm, lr, ... different seeds) are not independent draws, so the
bootstrap resamples cells with replacement and keeps each drawn cell's trials together.
A resample is a weight per trial (how many times its cell was drawn), and ρ of a resample
is computed from those weights exactly, without building the resampled arrays:

    rank of a trial = Σ_j w_j [x_j < x_i] + (Σ_j w_j [x_j = x_i] + 1) / 2   (mid-ranks of the copies)
    ρ = weighted Pearson correlation of the two rank vectors, weights w

which equals scipy's Spearman ρ of the arrays with each trial repeated w_i times. Every
signal is read on the same resamples, so differences between signals are paired.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.permutation import BOOT_RESAMPLES, SEED


def cell_weights(cells: np.ndarray, n_resamples: int = BOOT_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[n_resamples, n_trials] copies of each trial: its cell's count in a draw of as many cells as there are."""
    codes, cell_of = np.unique(np.asarray(cells), return_inverse=True)
    k = len(codes)
    counts = np.random.default_rng(seed).multinomial(k, np.full(k, 1.0 / k), size=n_resamples)
    return counts[:, cell_of].astype(float)


def weighted_ranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[B, n] mid-ranks of each trial among its weighted copies (ties share a rank)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # first position of each distinct value
    group_of_sorted = np.cumsum(np.r_[True, xs[1:] != xs[:-1]]) - 1
    per_value = np.add.reduceat(weights[:, order], starts, axis=1)  # [B, distinct values]
    below = np.cumsum(per_value, axis=1) - per_value
    value_rank = below + (per_value + 1) / 2
    ranks = np.empty_like(weights)
    ranks[:, order] = value_rank[:, group_of_sorted]
    return ranks


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[B] Spearman ρ of x and y in each weighted resample; NaN where either side is constant."""
    rx, ry = weighted_ranks(x, weights), weighted_ranks(y, weights)
    total = weights.sum(axis=1, keepdims=True)
    cx = rx - (weights * rx).sum(axis=1, keepdims=True) / total
    cy = ry - (weights * ry).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (weights * cx * cy).sum(1) / np.sqrt((weights * cx ** 2).sum(1) * (weights * cy ** 2).sum(1))
    # A constant resample has zero variance up to round-off: call it undefined, not ±1.
    flat = ((weights * cx ** 2).sum(1) < 1e-9) | ((weights * cy ** 2).sum(1) < 1e-9)
    return np.where(flat, np.nan, rho)


def resampled_rho(signals: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[B, S] ρ of each signal column with the target on the same resamples."""
    return np.stack([weighted_spearman(signals[:, s], target, weights) for s in range(signals.shape[1])], axis=1)


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the defined resamples (NaN resamples, from constant draws, left out)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)

"""The signal families against hand-computed values: predictors, early warning, selection, polarity.

SIX is a 6-run table small enough to work every statistic out on paper (the working is in the
comments); the bootstrap is checked against its exact distribution, enumerated independently.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import AnalysisOptions, analyze, rank_sum_test
from analysis.bootstrap import cell_weights, percentile_ci, weighted_spearman
from analysis.families.selection import pick
from analysis.permutation import auc
from trainables import keys

RET = keys.retention("colour")
EMB, CKA, DENT = keys.EMBEDDING_DRIFT, keys.cka(), keys.attn_delta("entropy")

# run:          1      2      3      4      5      6
RETENTION = [90.0, 80.0, 70.0, 40.0, 30.0, 20.0]  # damaged (< 50): runs 4, 5, 6
EMBEDDING = [0.10, 0.20, 0.40, 0.30, 0.50, 0.60]  # ranks 1 2 4 3 5 6
CKA_MEAN = [0.90, 0.85, 0.80, 0.50, 0.40, 0.30]  # ranks follow retention exactly
VAL_ACC = [80.0, 85.0, 90.0, 91.0, 92.0, 88.0]
DELTA_ENTROPY = [-1.0, -3.0, -2.0, -6.0, -5.0, -4.0]


def six() -> pd.DataFrame:
    """One method, six learning rates, one seed: every run is a cell of its own."""
    return pd.DataFrame({
        "dataset": "d", "method": "ft", "lr": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], "seed": 0, "status": "completed",
        RET: RETENTION, EMB: EMBEDDING, CKA: CKA_MEAN, keys.VAL_ACC: VAL_ACC, DENT: DELTA_ENTROPY,
        keys.at_epoch(EMB, 1): [e / 2 for e in EMBEDDING], keys.at_epoch(EMB, 2): EMBEDDING,
        keys.at_epoch(CKA, 1): CKA_MEAN, keys.at_epoch(CKA, 2): CKA_MEAN,
        keys.at_epoch(RET, 1): RETENTION, keys.at_epoch(RET, 2): RETENTION,
    })


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return analyze(six(), tmp_path_factory.mktemp("six"), families=["predictors", "early_warning", "selection",
                                                                     "polarity"])


def _one(frame: pd.DataFrame, **where) -> pd.Series:
    rows = frame
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, (where, rows)
    return rows.iloc[0]


# ---- predictors ---------------------------------------------------------------------------

def test_predictor_rho_and_exact_p_by_hand(result):
    # Rank differences embedding - retention: (1-6, 2-5, 4-4, 3-3, 5-2, 6-1) -> Σd² = 68,
    # ρ = 1 - 6·68 / (6·35) = -33/35. |ρ| >= 33/35 needs Σd² <= 2 or >= 68: the identity and its 5
    # adjacent swaps, the reversal and its 5 -> 12 of 720 orderings, p = 1/60.
    row = _one(result.tests, family="predictors", a=EMB)
    assert row["effect"] == pytest.approx(-33 / 35) and row["effect_size"] == pytest.approx(33 / 35)
    assert row["p_value"] == pytest.approx(1 / 60) and row["exact"]
    assert row["p_min"] == pytest.approx(2 / 720)  # only the identity and the reversal are as extreme as ±1


def test_reference_bootstrap_bounds_by_hand(result):
    # CKA orders the runs exactly as retention does: every resample with two distinct cells has |ρ| = 1.
    detail = result.outputs["predictors"].detail
    cka = _one(detail, signal=CKA)
    assert (cka["abs_rho_ci_low"], cka["abs_rho_ci_high"]) == (pytest.approx(1.0), pytest.approx(1.0))
    emb = _one(detail, signal=EMB)
    assert emb["gap_to_reference"] == pytest.approx(33 / 35 - 1)
    # The reference loses no resample (|ρ| <= 1) and wins every one where embedding drift is not monotone.
    assert 0 < emb["reference_wins"] <= 1 and emb["within_arm_groups"] == 1 and emb["within_arm_min_n"] == 6


def _exact_bootstrap(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every multiset of 6 cells drawn from 6 (462 of them) with its multinomial probability, and scipy's
    |ρ| of the arrays each one builds: the bootstrap distribution without sampling."""
    values, weights = [], []
    for counts in itertools.product(range(7), repeat=6):
        if sum(counts) != 6:
            continue
        xs, ys = np.repeat(x, counts), np.repeat(y, counts)
        if np.ptp(xs) == 0:
            continue
        values.append(abs(stats.spearmanr(xs, ys).statistic))
        weights.append(math.factorial(6) / math.prod(math.factorial(c) for c in counts) / 6 ** 6)
    return np.array(values), np.array(weights)


def test_cell_bootstrap_ci_matches_the_exact_distribution(result):
    values, weights = _exact_bootstrap(np.array(EMBEDDING), np.array(RETENTION))
    order = np.argsort(values)
    cdf = np.cumsum(weights[order]) / weights.sum()

    def quantile(q: float) -> float:
        return float(values[order][np.searchsorted(cdf, q)])

    emb = _one(result.outputs["predictors"].detail, signal=EMB)
    # 9,999 draws put the 2.5% and 97.5% points between the exact 1.5/3.5% and 96.5/98.5% quantiles.
    assert quantile(0.015) - 1e-9 <= emb["abs_rho_ci_low"] <= quantile(0.035) + 1e-9
    assert quantile(0.965) - 1e-9 <= emb["abs_rho_ci_high"] <= quantile(0.985) + 1e-9


def test_weighted_spearman_equals_scipy_on_the_expanded_arrays():
    rng = np.random.default_rng(3)
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0])  # ties included
    y = rng.normal(size=7)
    weights = rng.integers(0, 4, size=(200, 7)).astype(float)
    weights[:, 0] += 1  # at least one copy of something
    got = weighted_spearman(x, y, weights)
    for w, rho in zip(weights, got):
        xs, ys = np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int))
        want = stats.spearmanr(xs, ys).statistic if np.ptp(xs) > 0 and np.ptp(ys) > 0 else np.nan
        assert (np.isnan(rho) and np.isnan(want)) or rho == pytest.approx(want)


def test_cell_weights_keep_a_cells_trials_together():
    cells = np.array([0, 0, 1, 1, 2, 2])
    weights = cell_weights(cells, n_resamples=50)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 4] == weights[:, 5]).all()
    assert (weights.sum(1) == 6).all()  # three cells of two trials drawn three times
    low, high = percentile_ci(np.array([np.nan, 1.0]))  # one defined resample is no interval
    assert math.isnan(low) and math.isnan(high)


# ---- early warning ------------------------------------------------------------------------

def test_auc_and_its_exact_p_by_hand():
    # Damaged runs' embedding drift 0.3, 0.5, 0.6 against healthy 0.1, 0.2, 0.4: 8 of 9 pairs ordered,
    # AUC = 8/9. U over the 20 labellings of 3+3 takes 0..9 with counts 1 1 2 3 3 3 3 2 1 1;
    # |U - 4.5| >= 3.5 holds for U in {0, 1, 8, 9}: p = 4/20.
    damaged, healthy = np.array([0.3, 0.5, 0.6]), np.array([0.1, 0.2, 0.4])
    assert auc(damaged, healthy) == pytest.approx(8 / 9)
    result = rank_sum_test(damaged, healthy)
    assert result.statistic == pytest.approx(8 / 9) and result.p_value == pytest.approx(0.2) and result.exact
    assert result.p_min == pytest.approx(2 / 20)


def test_rank_sum_test_matches_enumeration_with_ties():
    a, b = np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 3.0, 3.0, 4.0, 5.0])
    pooled = np.concatenate([a, b])
    ranks = stats.rankdata(pooled)
    sums = np.array([ranks[list(c)].sum() for c in itertools.combinations(range(9), 4)])
    brute = np.mean(np.abs(sums - 20) >= abs(ranks[:4].sum() - 20) - 1e-9)
    assert rank_sum_test(a, b).p_value == pytest.approx(brute)


def test_early_warning_at_each_epoch(result):
    tests = result.tests[result.tests["family"] == "early_warning"]
    # Epoch 1 halves every value: ranks, hence ρ and AUC, are those of the final values.
    for k in (1, 2):
        assert _one(tests, a=EMB, b=f"epoch {k}: AUC")["effect"] == pytest.approx(8 / 9)
        assert _one(tests, a=EMB, b=f"epoch {k}: ρ")["effect"] == pytest.approx(-33 / 35)
    # CKA is oriented the other way (larger = closer): its damaged runs have the smallest CKA, AUC 1.
    assert _one(tests, a=CKA, b="epoch 1: AUC")["effect"] == pytest.approx(1.0)
    # One run per cell: cell means are the runs.
    assert _one(tests, a=EMB, b="epoch 1: AUC, cell means")["effect"] == pytest.approx(8 / 9)
    report = (result.out_dir / "report.md").read_text()
    assert "## Early warning" in report and "already separates" in report


# ---- selection ----------------------------------------------------------------------------

def test_selection_regret_by_hand(result):
    # Within 2 points of the best val accuracy (92): runs 3, 4, 5 (val 90, 91, 92), retention 70, 40, 30.
    # Embedding drift 0.4, 0.3, 0.5 picks run 4: 40 kept, oracle 70, random 140/3, regret 30,
    # (40 - 30) / (70 - 30) = 0.25 of the range; 2 of 3 candidates keep at least 40: p = 2/3.
    detail = result.outputs["selection"].detail
    emb = _one(detail, signal=EMB, margin=2.0)
    assert (emb["n_candidates"], emb["chosen"], emb["oracle"], emb["regret"]) == (3, 40, 70, 30)
    assert emb["random"] == pytest.approx(140 / 3) and emb["fraction"] == pytest.approx(0.25)
    assert emb["p_value"] == pytest.approx(2 / 3)
    # CKA picks the largest CKA (least drift): run 3, the oracle.
    cka = _one(detail, signal=CKA, margin=2.0)
    assert (cka["chosen"], cka["regret"], cka["fraction"], cka["p_value"]) == (70, 0, 1, pytest.approx(1 / 3))
    row = _one(result.tests, family="selection", a=EMB, b="within 2 points")
    assert row["effect"] == 30 and row["p_min"] == pytest.approx(1 / 3)


def test_tied_picks_share_the_choice():
    found = pick(np.array([0.1, 0.1, 0.5]), np.array([60.0, 20.0, 90.0]), direction=1)
    assert found["chosen"] == 40 and found["regret"] == 50 and found["p_value"] == pytest.approx(2 / 3)


# ---- polarity -----------------------------------------------------------------------------

def test_polarity_signs_by_hand(result):
    tests = result.tests[result.tests["family"] == "polarity"]
    assert _one(tests, a=CKA)["effect"] == pytest.approx(1.0)
    assert _one(tests, a=CKA)["p_value"] == pytest.approx(2 / 720)
    # Δentropy ranks 6 4 5 1 2 3 against retention's 6 5 4 3 2 1: Σd² = 0+1+1+4+0+4 = 10, ρ = 1 - 60/210 = 5/7.
    assert _one(tests, a=DENT)["effect"] == pytest.approx(5 / 7)
    report = (result.out_dir / "report.md").read_text()
    assert "No sign flips between groups" in report
    assert "Not in this table: drift/weight_rel" in report  # a table before weight drift says so


def test_tests_csv_has_the_new_families_with_the_same_columns(result):
    from analysis import TEST_COLUMNS

    tests = pd.read_csv(result.out_dir / "tests.csv")
    assert tuple(tests.columns) == TEST_COLUMNS
    assert set(tests["family"]) == {"predictors", "early_warning", "selection", "polarity"}
    for name in ("predictors.csv", "early_warning.csv", "selection.csv", "polarity.csv",
                 "predictors.png", "early_warning.png"):
        assert (result.out_dir / name).is_file(), name


def test_a_best_epoch_target_reads_best_epoch_signals(tmp_path):
    """With `best/retention` as target, signals and the validation accuracy are the best epoch's too."""
    table = six()
    best = table.assign(**{keys.best(RET): table[RET][::-1].to_numpy(), keys.best(EMB): table[EMB],
                           keys.best(keys.VAL_ACC): table[keys.VAL_ACC]})
    result = analyze(best, tmp_path, families=["predictors", "selection"],
                     options=AnalysisOptions(target="best/retention"))
    predictors = result.tests[result.tests["family"] == "predictors"]
    assert set(predictors["metric"]) == {keys.best(RET)} and set(predictors["a"]) == {keys.best(EMB), "log10(lr)"}
    # Reversed retention: the embedding-drift ranks now agree with it, ρ = +33/35.
    assert _one(predictors, a=keys.best(EMB))["effect"] == pytest.approx(33 / 35)
    assert "best/val/acc" in (tmp_path / "report.md").read_text()


def test_default_signals_take_the_new_metrics_when_present():
    """Weight drift, embedding drift and the deepest layer's attention Δ join the default signals;
    the metric history read from MLflow asks for the same keys."""
    from analysis.mlflow_io import history_keys
    from analysis.signals import default_signals

    rng = np.random.default_rng(0)
    layered = {keys.attn_delta("entropy", layer): rng.normal(size=6) for layer in range(4)}
    table = six().assign(**layered, **{keys.WEIGHT_DRIFT: rng.random(6), keys.TRAIN_LOSS: rng.random(6)})
    names = [s.name for s in default_signals(table, RET)]
    deepest = keys.attn_delta("entropy", 3)
    assert {keys.WEIGHT_DRIFT, EMB, CKA, DENT, f"|{DENT}|", deepest, f"|{deepest}|", keys.TRAIN_LOSS,
            "log10(lr)"} == set(names)
    assert keys.attn_delta("entropy", 0) not in names
    wanted = history_keys(list(table.columns))
    assert deepest in wanted and keys.attn_delta("entropy", 0) not in wanted and keys.WEIGHT_DRIFT in wanted

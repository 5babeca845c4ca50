"""Fast tests of driftlab's analysis module: permutation tests, resolution, Holm, CSV to report, CLI."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from analysis import (TEST_COLUMNS, AnalysisInputError, analyze, higher_is_better, holm, options_from_spec,
                      pareto, sign_flip_test, spearman_test, table_from_csv, tidy, two_sample_test)
from analysis.cli import main
from analysis.permutation import MC_RESAMPLES, spearman_p_min, two_sample_p_min

RETENTION = "zeroshot/cifar100/retention"
LRS = (1e-5, 1e-4, 1e-3, 1e-2)


def synthetic_table(seed: int = 0) -> pd.DataFrame:
    """2 datasets x {ft, lora} x 4 lrs x 3 seeds; lora keeps ~60 points more retention; +1 diverged."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, method, lr, s in itertools.product(("eurosat", "pets"), ("ft", "lora"), LRS, range(3)):
        lora = method == "lora"
        rows.append({
            "dataset": dataset, "method": method, "lr": lr, "seed": s, "epochs": 4, "status": "completed",
            "trial_id": len(rows),
            "val/acc": 0.8 + rng.normal(0, 0.02),
            "test/acc": 0.8 + 0.02 * np.log10(lr) + rng.normal(0, 0.01),
            RETENTION: (90.0 if lora else 30.0) + rng.normal(0, 3),
            "attn/delta_entropy_pct": rng.normal(-5 if lora else -40, 5),
            "train/loss": 1 + rng.normal(0, 0.1),
        })
    rows.append({"dataset": "eurosat", "method": "ft", "lr": 0.1, "seed": 0, "epochs": 4,
                 "status": "diverged", "trial_id": len(rows)})
    return pd.DataFrame(rows)


# ---- permutation tests --------------------------------------------------------------------

def test_sign_flip_exact_on_hand_enumerable_example():
    # 4 positive differences: 16 sign patterns, only 'all +' reaches the mean -> 2 * 1/16.
    result = sign_flip_test(np.array([1.0, 2.0, 3.0, 4.0]))
    assert result.exact is True
    assert result.n_permutations == 16
    assert result.p_value == pytest.approx(2 / 16)
    assert result.p_min == pytest.approx(2 / 16)
    assert result.statistic == pytest.approx(2.5)


def test_planted_effects_give_small_p():
    rng = np.random.default_rng(1)
    assert sign_flip_test(rng.normal(1.0, 0.5, 12)).p_value < 0.01
    assert two_sample_test(rng.normal(2, 1, 8), rng.normal(0, 1, 8)).p_value < 0.01
    x = np.arange(10.0)
    assert spearman_test(x, x + rng.normal(0, 1, 10)).p_value < 0.01


def test_null_p_values_roughly_uniform():
    rng = np.random.default_rng(2)
    flips = [sign_flip_test(rng.normal(0, 1, 10)).p_value for _ in range(50)]
    ranks = [spearman_test(np.arange(7.0), rng.normal(0, 1, 7)).p_value for _ in range(50)]
    for p in (flips, ranks):
        assert 0.05 <= np.mean(np.array(p) < 0.2) <= 0.4


def test_p_min_and_resolvable(tmp_path):
    assert spearman_p_min(np.arange(4), np.arange(4)) == pytest.approx(1 / 12)
    assert spearman_test(np.arange(4.0), np.array([1.0, 3.0, 2.0, 5.0])).p_min == pytest.approx(1 / 12)
    assert two_sample_p_min(np.arange(3.0), np.arange(3.0) + 10) == pytest.approx(2 / math.comb(6, 3))
    # Too many sign patterns to enumerate: Monte Carlo, floored at 2 / (N + 1).
    big = sign_flip_test(np.arange(1.0, 21.0))
    assert big.exact is False and big.p_min == pytest.approx(2 / (MC_RESAMPLES + 1))
    # Spearman over 4 cell means can never reach 0.05: the dose row must say so.
    table = pd.DataFrame({"dataset": "d", "method": "ft", "lr": LRS, "seed": 0, "val/acc": [0.1, 0.2, 0.3, 0.4]})
    result = analyze(table, tmp_path, families=["dose"])
    row = result.tests.iloc[0]
    assert row["p_min"] == pytest.approx(1 / 12) and not row["resolvable"] and row["exact"]


def test_two_sample_p_min_matches_enumeration_with_ties():
    a, b = np.array([1.0, 2.0, 2.0]), np.array([2.0, 3.0, 4.0, 4.0])
    pooled = np.concatenate([a, b])
    diffs = []
    for chosen in itertools.combinations(range(7), 3):
        mask = np.zeros(7, bool)
        mask[list(chosen)] = True
        diffs.append(pooled[mask].mean() - pooled[~mask].mean())
    diffs = np.array(diffs)
    brute = 2 * min(np.mean(diffs >= diffs.max() - 1e-12), np.mean(diffs <= diffs.min() + 1e-12))
    assert two_sample_p_min(a, b) == pytest.approx(brute)


def test_holm_worked_example():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.02, np.nan, 0.5])
    assert np.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.5)


def test_metric_direction():
    assert higher_is_better("test/acc") and higher_is_better(RETENTION) and higher_is_better("repr/cka/mean")
    assert higher_is_better("train/loss") is False
    assert higher_is_better("attn/delta_entropy_pct") is None and higher_is_better("attn/entropy/mean") is None


# ---- tables -------------------------------------------------------------------------------

def test_tidy_converts_numeric_strings_and_orders_columns():
    raw = pd.DataFrame({"val/acc": [0.5, 0.6], "lr": ["1e-3", "0.01"], "seed": ["0", "1"],
                        "method": ["ft", "ft"], "run_id": ["x", "y"], "note": ["a", "b"]})
    table = tidy(raw)
    assert list(table.columns) == ["dataset", "method", "lr", "seed", "run_id", "note", "val/acc"]
    assert table["lr"].tolist() == [1e-3, 0.01] and table["seed"].dtype.kind == "i"
    with pytest.raises(AnalysisInputError, match="--metrics"):
        tidy(raw, ["test/acc"])


def test_unmatched_methods_are_compared_unpaired_and_arms_split(tmp_path):
    table = synthetic_table()
    table = table[(table["dataset"] == "eurosat") & (table["status"] == "completed")]
    adapter = table[table["method"] == "ft"].assign(method="adapter", lr=lambda t: t["lr"] * 3)
    gta = pd.concat([table[table["method"] == "ft"].assign(method="gta", gta_lambda=lam) for lam in (0.1, 1.0)])
    gta[RETENTION] += gta["gta_lambda"] * 10
    result = analyze(pd.concat([table, adapter, gta]), tmp_path, families=["paired", "unpaired"],
                     metrics=[RETENTION])
    pairs = {(r.family, r.a, r.b) for r in result.tests.itertuples()}
    assert ("unpaired", "adapter", "ft") in pairs and ("paired", "adapter", "ft") not in pairs
    # The λ makes arms of a method: each is matched on its own, never pooled with the others.
    assert ("paired", "ft", "gta+gta1") in pairs and ("paired", "gta+gta0.1", "gta+gta1") in pairs
    assert ("paired", "ft", "lora") in pairs


def test_pareto_front(tmp_path):
    table = pd.DataFrame({"dataset": "d", "method": "ft", "acc": [1, 2, 3, 2], "ret": [3, 2, 1, 1]})
    front, figure = pareto(table, {"acc": "max", "ret": "max"}, tmp_path / "p.png")
    assert sorted(front["acc"]) == [1, 2, 3] and figure is not None and figure.exists()


# ---- end to end ---------------------------------------------------------------------------

def test_csv_end_to_end(tmp_path, capsys):
    csv, out = tmp_path / "sweep.csv", tmp_path / "out"
    synthetic_table().to_csv(csv, index=False)
    assert main(["--csv", str(csv), "--out", str(out)]) == 0
    for name in ("tests.csv", "cells.csv", "report.md", "paired_differences.png"):
        assert (out / name).is_file(), name
    tests = pd.read_csv(out / "tests.csv", keep_default_na=False)
    assert tuple(tests.columns) == TEST_COLUMNS
    # Every pair matches (no unpaired); no per-epoch values (no early warning).
    assert set(tests["family"]) == {"paired", "dose", "association", "predictors", "selection", "polarity"}
    retention = tests[(tests["family"] == "paired") & (tests["metric"] == RETENTION)]
    assert len(retention) == 2  # one per dataset
    assert np.allclose(retention["p_value"].astype(float), 2 / 2 ** 12)
    assert (retention["p_adjusted"].astype(float) < 0.05).all() and (retention["exact"].astype(str) == "True").all()
    assert (retention["effect"].astype(float) < -50).all()  # a = ft, b = lora
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 16 and (cells["n"] == 3).all()  # the diverged trial is no cell
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "lora keeps" in report and "| diverged | 1 |" in report and "1 excluded" in report
    assert "driftlab analyze: report:" in capsys.readouterr().err


def test_analyze_counts_exclusions_and_honours_families(tmp_path):
    result = analyze(synthetic_table(), tmp_path, families="paired", metrics=[RETENTION])
    assert result.excluded == {"diverged": 1} and result.n_completed == 48
    assert set(result.tests["family"]) == {"paired"} and len(result.significant) == 2


@pytest.mark.parametrize("argv, field", [
    (["--csv", "/nonexistent/sweep.csv"], "--csv"),
    (["--csv", "{csv}", "--families", "paired,bogus"], "--families"),
    (["--csv", "{nometrics}"], "--metrics"),
    (["--csv", "{csv}", "--metrics", "no/such"], "--metrics"),
    (["--csv", "{csv}", "--alpha", "2"], "--alpha"),
    ([], "input"),
    (["--csv", "{csv}", "--experiment", "x"], "input"),
    (["--experiment", "x"], "--tracking-uri"),
    (["--csv", "{csv}", "--bogus"], "unrecognized"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch, argv, field):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    csv, nometrics = tmp_path / "s.csv", tmp_path / "n.csv"
    synthetic_table().to_csv(csv, index=False)
    pd.DataFrame({"dataset": ["d"], "method": ["ft"], "status": ["completed"]}).to_csv(nometrics, index=False)
    argv = [a.format(csv=csv, nometrics=nometrics) for a in argv]
    assert main(argv + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0], err


def test_spec_section_sets_options(tmp_path):
    opts = options_from_spec({"families": ["paired", "dose"], "metrics": ["val/acc"], "alpha": 0.01})
    assert opts.families == ["paired", "dose"] and opts.metrics == ["val/acc"] and opts.alpha == 0.01
    with pytest.raises(AnalysisInputError, match="analysis.famlies"):
        options_from_spec({"famlies": ["paired"]})
    spec, csv = tmp_path / "sweep.yaml", tmp_path / "s.csv"
    spec.write_text("analysis:\n  families: [paired]\n  metrics: [zeroshot/cifar100/retention]\n")
    synthetic_table().to_csv(csv, index=False)
    assert main(["--csv", str(csv), "--spec", str(spec), "--out", str(tmp_path / "o")]) == 0
    tests = pd.read_csv(tmp_path / "o" / "tests.csv")
    assert set(tests["family"]) == {"paired"} and set(tests["metric"]) == {RETENTION}


def test_parsed_options_pass_as_a_value_and_flags_override_them(tmp_path):
    from analysis import AnalysisOptions
    from analysis.cli import build_parser, run

    csv = tmp_path / "s.csv"
    synthetic_table().to_csv(csv, index=False)
    defaults = AnalysisOptions(families=["paired"], metrics=[RETENTION])
    run(build_parser().parse_args(["--csv", str(csv), "--out", str(tmp_path / "a")]), defaults)
    tests = pd.read_csv(tmp_path / "a" / "tests.csv")
    assert set(tests["family"]) == {"paired"} and set(tests["metric"]) == {RETENTION}
    run(build_parser().parse_args(["--csv", str(csv), "--out", str(tmp_path / "b"), "--families", "dose"]), defaults)
    assert set(pd.read_csv(tmp_path / "b" / "tests.csv")["family"]) == {"dose"}
    assert defaults.families == ["paired"]  # the caller's value is not changed


def test_csv_and_dataframe_paths_agree(tmp_path):
    csv = tmp_path / "s.csv"
    synthetic_table().to_csv(csv, index=False)
    pd.testing.assert_frame_equal(table_from_csv(csv), tidy(synthetic_table()))


def test_analysis_never_imports_ray_or_siblings():
    """Nothing from ray or orchestrator; from trainables only the standard-library key module."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "analysis"
    pattern = re.compile(r"^\s*(from|import)\s+(ray|orchestrator|trainables(?!\.keys\b|\s+import\s+keys\b))\b",
                         re.M)
    offenders = [p.name for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_importing_analysis_pulls_neither_torch_nor_ray():
    import subprocess
    import sys

    code = ("import sys, analysis, analysis.cli; "
            "print(sorted(m for m in ('torch', 'ray', 'trainables.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]


def test_parameter_columns_are_the_trial_config_keys():
    from dataclasses import fields

    from analysis.schema import PARAMETER_COLUMNS
    from trainables.config import TrialConfig

    assert sorted(PARAMETER_COLUMNS) == sorted(f.name for f in fields(TrialConfig))


def test_single_trial_methods_are_skipped_not_crashed(tmp_path):
    """One trial of a method (e.g. a sweep of head-init variants) cannot be tested; the rest still runs."""
    from analysis import analyze

    rows = [dict(dataset="d", method="ft", lr=1e-3, seed=0, head_init="random", status="completed",
                 **{"val/acc": 50.0}),
            dict(dataset="d", method="lora", lr=1e-3, seed=0, head_init="random", status="completed",
                 **{"val/acc": 40.0}),
            dict(dataset="d", method="ft", lr=1e-3, seed=0, head_init="zeroshot", status="completed",
                 **{"val/acc": 52.0}),
            dict(dataset="d", method="ft", lr=1e-3, seed=0, head_init="zeroshot", status="diverged",
                 **{"val/acc": float("nan")})]
    result = analyze(pd.DataFrame(rows), tmp_path)
    assert result.excluded == {"diverged": 1}
    assert (tmp_path / "report.md").exists()


def test_a_trial_without_params_is_excluded_not_a_crash(tmp_path):
    """A run whose params never reached MLflow has no dataset or method: it cannot sit in any cell."""
    table = synthetic_table()
    table.loc[3, ["dataset", "method", "lr", "seed", "epochs"]] = np.nan
    result = analyze(tidy(table), out_dir=tmp_path)
    assert result.excluded == {"missing parameters": 1, "diverged": 1}
    assert (tmp_path / "report.md").exists()

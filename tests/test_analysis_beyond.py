"""The stop_rule and wise_frontier families on small tables whose answers are computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import analyze
from trainables import keys

RET = "zeroshot/colour/retention"


def stop_table() -> pd.DataFrame:
    """3 seeds x {no rule, rule}; the rule fires in seeds 0 and 1 after 1 of 4 epochs."""
    rows = []
    for seed in range(3):
        base = {"dataset": "shade", "method": "ft", "lr": 1e-3, "seed": seed, "epochs": 4, "stop_metric": "",
                "status": "completed", "test/acc": 90.0 + seed, RET: 50.0 + seed, "val/acc": 88.0}
        rows.append(base)
        fired = seed < 2
        rows.append({**base, "stop_metric": "drift/embedding", "stop_above": 0.3,
                     "status": "stopped_drift" if fired else "completed",
                     "test/acc": base["test/acc"] - (4.0 if fired else 0.0), RET: base[RET] + (20.0 if fired else 0.0),
                     keys.STOP_COMPUTE: 0.25 if fired else float("nan")})
    return pd.DataFrame(rows)


def test_stop_rule_reports_compute_saved_retention_kept_and_accuracy_given_up(tmp_path):
    result = analyze(stop_table(), tmp_path, families="stop_rule", metrics=[RET])
    detail = pd.read_csv(tmp_path / "stop_rule.csv")
    assert len(detail) == 1
    r = detail.iloc[0]
    assert r["pairs"] == 3 and r["fired"] == 2
    assert r["compute_saved"] == pytest.approx((0.75 + 0.75 + 0) / 3)
    assert r["retention_kept"] == pytest.approx(40 / 3) and r["accuracy_given_up"] == pytest.approx(8 / 3)
    tests = result.tests.set_index("metric")
    assert tests.loc[RET, "n"] == 3 and tests.loc[RET, "p_value"] == pytest.approx(2 / 4)  # 2 nonzero signs of 3
    report = (tmp_path / "report.md").read_text()
    assert "fired in 2 of 3 trials" in report and "stopped_drift" not in result.excluded


def test_a_sweep_where_every_trial_has_the_rule_has_nothing_to_pair(tmp_path):
    # Two methods x 3 seeds, all with the rule: no trial without it to compare against.
    table = stop_table()
    ruled = table[table["stop_metric"] != ""]
    table = pd.concat([ruled, ruled.assign(method="lora")], ignore_index=True)
    result = analyze(table, tmp_path, families="stop_rule", metrics=[RET])
    assert result.tests.empty
    assert not (tmp_path / "stop_rule.csv").exists() or pd.read_csv(tmp_path / "stop_rule.csv").empty


def test_wise_frontier_counts_the_front_points_interpolation_dominates(tmp_path):
    # Sweep: A (acc 90, ret 40) and B (acc 70, ret 80) are the front; C (60, 50) is dominated.
    # ft's α-points reach (85, 60) and (91, 41): they dominate A only; lora's (72, 85) dominates B.
    rows = [
        {"method": "ft", "seed": 0, "test/acc": 90.0, RET: 40.0,
         keys.at_alpha("test/acc", 50): 85.0, keys.at_alpha(RET, 50): 60.0,
         keys.at_alpha("test/acc", 100): 91.0, keys.at_alpha(RET, 100): 41.0},
        {"method": "lora", "seed": 0, "test/acc": 70.0, RET: 80.0,
         keys.at_alpha("test/acc", 50): 72.0, keys.at_alpha(RET, 50): 85.0},
        {"method": "lp", "seed": 0, "test/acc": 60.0, RET: 50.0},
    ]
    table = pd.DataFrame([{**r, "dataset": "shade", "status": "completed", "val/acc": 1.0} for r in rows])
    analyze(table, tmp_path, families="wise_frontier", metrics=[RET])
    detail = pd.read_csv(tmp_path / "wise_frontier.csv")
    summary = detail[detail["kind"].isna()].set_index("arm")
    assert summary.loc["all arms", "front_points"] == 2 and summary.loc["all arms", "dominated"] == 2
    assert summary.loc["ft", "dominated"] == 1 and summary.loc["lora", "dominated"] == 1
    assert (tmp_path / "wise_frontier.png").stat().st_size > 1000
    assert "Weight interpolation dominates the sweep's own trade-off" in (tmp_path / "report.md").read_text()


def test_a_missing_value_is_a_stratum_of_its_own():
    # pandas 3 keeps NaN through astype(str): trials without a stop threshold must not vanish from strata.
    from analysis.strata import stratify

    table = stop_table()
    strata = dict(stratify(table, ("arm", "lr", "seed")))
    assert sum(len(rows) for rows in strata.values()) == len(table) == 6 and len(strata) == 2

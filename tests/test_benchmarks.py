"""The benchmarks' smoke mode runs end to end, so they never rot (the figures themselves live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.services import service_env


@pytest.mark.slow
def test_benchmarks_smoke_reports_every_figure(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--json", "--only", "step,eval,gta,memory,tune,wise,stop_probe"],
                         env=service_env(DRIFTLAB_HOME=str(tmp_path), HF_HUB_OFFLINE="1"),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout)
    for key in ("step_ratio", "eval_ratio", "gta_ratio", "gta_cached_ratio", "wise_alpha_over_eval",
                "probe_over_step"):
        assert 0 < figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
    assert 0 < figures["lora_mem_ratio"] < 2
    assert figures["tune_ratio"] > 0.5 and figures["tune_overhead_s_per_trial"] < 60
    for key in ("tune_worker_startup_s", "tune_in_trial_overhead_s", "tune_between_trials_s", "tune_end_s"):
        assert 0 <= figures[key] < 120, (key, figures[key])
    for key in ("ft_images_per_s", "lora_images_per_s", "gta_images_per_s", "gta_cached_images_per_s"):
        assert figures[key] > 0


def test_unknown_benchmark_is_exit_2():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "speed"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().startswith("benchmarks: --only:")


def test_the_overhead_breakdown_by_hand():
    # Two workers from a sweep started at t=100 and ended at t=131.5. Worker 1: trials over [103, 110] and
    # [111, 120]; worker 2: one trial over [105, 130]. time_total_s - compute = 1, 0.5 and 2 s.
    results = [
        {"pid": 1, "timestamp": 110, "time_total_s": 7.0, "time/trial_s": 6.0},
        {"pid": 1, "timestamp": 120, "time_total_s": 9.0, "time/trial_s": 8.5},
        {"pid": 2, "timestamp": 130, "time_total_s": 25.0, "time/trial_s": 23.0},
    ]
    from benchmarks.sweep import overhead_breakdown

    got = overhead_breakdown(results, 100.0, 131.5)
    assert got == {"tune_worker_startup_s": (3 + 5) / 2, "tune_in_trial_overhead_s": (1 + 0.5 + 2) / 3,
                   "tune_between_trials_s": 1.0, "tune_end_s": 1.5}

"""The benchmarks' smoke mode runs end to end, so they never rot (the figures themselves live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.services import service_env


@pytest.mark.slow
def test_benchmarks_smoke_reports_every_figure(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--json", "--only",
                          "step,eval,gta,memory,throughput,tune,wise,stop_probe,eval_batch"],
                         env=service_env(DRIFTLAB_HOME=str(tmp_path), HF_HUB_OFFLINE="1"),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout)
    for key in ("step_ratio", "eval_ratio", "gta_ratio", "gta_cached_ratio", "wise_alpha_over_eval",
                "probe_over_step", "eval_batch_ratio_1t", "eval_batch_ratio_2t"):
        assert 0 < figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
    assert 0 < figures["lora_mem_ratio"] < 2
    assert figures["tune_ratio"] > 0.5 and figures["tune_overhead_s_per_trial"] < 60
    for key in ("tune_worker_startup_s", "tune_in_trial_overhead_s", "tune_between_trials_s", "tune_end_s"):
        assert 0 <= figures[key] < 120, (key, figures[key])
    for key in ("ft_images_per_s", "lora_images_per_s", "gta_images_per_s", "gta_cached_images_per_s"):
        assert figures[key] > 0
    for arm in ("ft", "lora", "gta"):
        assert figures[f"{arm}_gflop_per_image"] > 0
        assert figures[f"{arm}_b4_images_per_s"] > 0 and figures[f"{arm}_b8_images_per_s"] > 0
    assert figures["throughput_device"] == "cpu" and figures["throughput_peak_tflops"] is None  # no MFU on a CPU


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


def test_peaks_and_mfu_by_hand():
    from benchmarks.throughput import bf16_peak, mfu

    assert bf16_peak("NVIDIA H100 80GB HBM3") == 989e12 and bf16_peak("NVIDIA H100 PCIe") == 756e12
    assert bf16_peak("NVIDIA H200") == 989e12 and bf16_peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert bf16_peak("NVIDIA GeForce GTX 1080") is None
    # 2000 images/s at 26.4 GFLOP each (a B/32 FT step's order) on a 989 TFLOP/s part: 5.34%.
    assert abs(mfu(2000, 26.4e9, 989e12) - 2000 * 26.4e9 / 989e12) < 1e-15
    assert round(mfu(2000, 26.4e9, 989e12), 4) == 0.0534


def test_a_counted_training_step_is_forward_and_backward(tmp_path):
    """FT's step costs up to 3 forwards (backward: input and weight gradients), LoRA's up to 2 (input gradients
    only, through the frozen base). Both skip the patch embedding's input gradient, 40% of this small model's
    forward, hence the lower bounds."""
    import torch

    from benchmarks.common import save_random_clip
    from benchmarks.compute import build
    from benchmarks.throughput import step_flops

    model_dir = save_random_clip("smoke", tmp_path)
    for method, low, high in (("ft", 2.4, 3.05), ("lora", 1.3, 2.05)):
        trial, phase, optimizer, scheduler, x, y, _ = build(model_dir, 4, method=method)
        with torch.no_grad():
            forward = step_flops(lambda: trial.model(x))
        ratio = step_flops(lambda: trial.step(phase, optimizer, scheduler, x, y)) / forward
        assert low < ratio < high, (method, ratio)

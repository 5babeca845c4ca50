"""Orchestration cost: Tune sweep wall time against the trials' own compute, and the demo's wall time.

tune_ratio = sweep wall / (Σ per-trial compute / concurrency), 8 trials on a local Ray with a
real local MLflow server, each trial reporting its own build+train+evaluate seconds
(`time/trial_s`). Per-trial overhead = (wall x concurrency - Σ compute) / trials.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def tune_ratio(smoke: bool, concurrency: int = 2) -> dict:
    import ray

    from orchestrator.parent import open_parent
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import run_sweep
    from orchestrator.tracking import LocalServer, bound_client_retries
    from orchestrator.trainable import SweepContext

    # Long enough (>= 10 s per trial in full mode) that the ratio measures orchestration, not noise.
    trial = {"epochs": 1, "data_fraction": 0.25} if smoke else {"epochs": 8, "data_fraction": 1.0, "batch_size": 64}
    spec = parse_spec({"name": f"bench_tune_{int(time.time())}", "trial": {**trial, "zeroshot_size": 300},
                       "grid": {"seed": list(range(8))}, "resources": {"cpu": 1}})
    home = Path(tempfile.mkdtemp(prefix="driftlab-bench-"))
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"
    bound_client_retries()
    with LocalServer(home=home) as server:
        from mlflow import MlflowClient

        ray.init(address="local", num_cpus=concurrency, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR", runtime_env={"env_vars": {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}})
        try:
            experiment_id, parent = open_parent(MlflowClient(server.uri), spec, False, 8)
            started = time.time()
            outcome = run_sweep(spec, str(home / "runs"), SweepContext(server.uri, experiment_id, parent), False)
        finally:
            ray.shutdown()
    compute = [r.metrics["time/trial_s"] for r in outcome.results]
    ideal = sum(compute) / concurrency
    return {"tune_ratio": outcome.wall_s / ideal, "tune_overhead_s_per_trial": (outcome.wall_s - ideal) * concurrency / 8,
            "tune_trial_s_mean": sum(compute) / len(compute), "tune_wall_s": outcome.wall_s,
            **overhead_breakdown([r.metrics for r in outcome.results], started, started + outcome.wall_s)}


def overhead_breakdown(results: list[dict], sweep_start: float, sweep_end: float) -> dict:
    """Where the overhead goes, per worker process, from what Tune records with each trial's last result:
    `pid`, `timestamp` (its wall clock, whole seconds) and `time_total_s` (the trainable's own clock from its
    start), beside the trial's compute `time/trial_s`.

    tune_worker_startup_s: sweep start to the worker's first trial starting (actor start, imports), mean
    over workers; tune_in_trial_overhead_s: time_total_s - compute (MLflow run, reports, figures, upload,
    close), mean over trials; tune_between_trials_s: one trial's end to the next one's start on the same
    worker, mean over gaps; tune_end_s: the last trial's end to the sweep's end. Start and end times carry
    the timestamps' 1 s resolution; the in-trial figure is exact."""
    by_worker: dict[int, list[tuple[float, float]]] = {}
    for m in results:
        by_worker.setdefault(m["pid"], []).append((m["timestamp"] - m["time_total_s"], float(m["timestamp"])))
    spans = [sorted(v) for v in by_worker.values()]
    gaps = [max(0.0, b[0] - a[1]) for worker in spans for a, b in zip(worker, worker[1:])]
    return {
        "tune_worker_startup_s": sum(w[0][0] - sweep_start for w in spans) / len(spans),
        "tune_in_trial_overhead_s": sum(m["time_total_s"] - m["time/trial_s"] for m in results) / len(results),
        "tune_between_trials_s": sum(gaps) / len(gaps) if gaps else 0.0,
        "tune_end_s": max(0.0, sweep_end - max(w[-1][1] for w in spans)),
    }


def demo_seconds(smoke: bool) -> dict:
    home = tempfile.mkdtemp(prefix="driftlab-bench-demo-")
    env = {**os.environ, "DRIFTLAB_HOME": home}
    args = [sys.executable, "-m", "orchestrator.cli", "run", "demo", "--name", "bench_demo"] + (["--smoke"] if smoke else [])
    start = time.perf_counter()
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return {"demo_seconds": time.perf_counter() - start}

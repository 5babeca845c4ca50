"""After a sweep: close what Tune ended but MLflow still shows RUNNING, and replay what never reached MLflow.

Tune's results are the fallback record. A trial stopped early by ASHA, a worker killed
before it could close its run, or a tracking server that went away mid-sweep all leave
MLflow behind Tune; `reconcile` fixes run states at the end of every `driftlab run`, and
`sync` replays per-epoch metrics from Tune's results into MLflow (steps already logged are
skipped, so it is safe to run twice).
"""

from __future__ import annotations

import math

from orchestrator.configs import trial_config
from orchestrator.tracking import STATUS_TAG, TrialRun, find_trial_run, numeric_metrics, run_state
from orchestrator.trainable import SweepContext
from trainables import keys


def trial_status(result) -> str:
    if result.error is not None:
        return "failed"
    status = (result.metrics or {}).get("status")
    return status if status in ("completed", "diverged") else "stopped"


def tune_counts(results) -> dict[str, int]:
    """Trials per outcome from Tune's record alone (when MLflow cannot be asked)."""
    counts: dict[str, int] = {}
    for result in results:
        status = trial_status(result)
        counts[status] = counts.get(status, 0) + 1
    return counts


def reconcile(client, context: SweepContext, results) -> dict[str, int]:
    """Set each trial's MLflow run to its Tune outcome; returns counts per status and unsynced trials."""
    counts = tune_counts(results)
    for result in results:
        status = trial_status(result)
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or result.path.rsplit("_", 2)[-2]
        run = find_trial_run(client, context.experiment_id, context.parent_run_id, trial_id)
        if run is None or metrics.get(keys.UNSYNCED, 0):
            counts["unsynced"] = counts.get("unsynced", 0) + 1
        if run is not None and run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, STATUS_TAG, status)
            client.set_terminated(run.info.run_id, run_state(status))
    return counts


def sync(context: SweepContext, results) -> int:
    """Replay every trial's per-epoch results into its MLflow run; returns the number of metric rows written."""
    from mlflow import MlflowClient

    client = MlflowClient(context.tracking_uri)
    written = 0
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty:
            continue
        trial_id = str(frame["trial_id"].iloc[-1])
        config = trial_config(result.config).to_dict()
        run = TrialRun(context.tracking_uri, context.experiment_id, context.parent_run_id, trial_id,
                       trial_id, config)
        run.open()
        if run.run_id is None:
            raise RuntimeError(f"cannot reach {context.tracking_uri}: {run.error}")
        logged = {int(m.step) for m in client.get_metric_history(run.run_id, keys.VAL_ACC)}
        for row in frame.to_dict("records"):
            if int(row.get("epoch", 0)) in logged:
                continue
            clean = {k: v for k, v in row.items() if "/" in k and isinstance(v, float) and not math.isnan(v)}
            run.log({**clean, "epoch": int(row.get("epoch", 0)), "status": row.get("status", "running")})
            written += len(numeric_metrics(clean))
        run.close(trial_status(result))
    return written

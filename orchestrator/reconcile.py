"""After a sweep: each trial's outcome from Tune's record, and MLflow's run states brought in line.

Tune's results are the fallback record. A trial stopped early by ASHA, a worker killed before
it could close its run, an interrupted sweep, or a tracking server that went away mid-sweep
all leave MLflow behind Tune; `reconcile` fixes run states at the end of every `driftlab run`
(`orchestrator/sync.py` replays what never reached MLflow).

Outcomes: `completed` / `diverged` (the trial said so), `failed` (it raised), `stopped` (Tune
terminated it early: an ASHA decision), `interrupted` (not terminated: the sweep was stopped,
or broke, before the trial ended; a resume runs it).
"""

from __future__ import annotations

from orchestrator.tracking import STATUS_TAG, find_trial_run, run_state
from orchestrator.trainable import SweepContext


def tune_trials(results) -> list[tuple]:
    """(result, Tune trial) pairs; `trial.status` is TERMINATED, ERROR, RUNNING, PENDING or PAUSED.

    A ResultGrid does not expose the status publicly; it is built from these trials, in this order
    (and a trial that never started has no metrics to read its id from: `trial.trial_id` has it).
    """
    return list(zip(results, results._experiment_analysis.trials))


def trial_status(result, state: str) -> str:
    if result.error is not None or state == "ERROR":
        return "failed"
    status = (result.metrics or {}).get("status")
    if status in ("completed", "diverged"):
        return status
    return "stopped" if state == "TERMINATED" else "interrupted"


def tune_counts(results) -> dict[str, int]:
    """Trials per outcome from Tune's record alone (when MLflow cannot be asked)."""
    counts: dict[str, int] = {}
    for result, trial in tune_trials(results):
        status = trial_status(result, trial.status)
        counts[status] = counts.get(status, 0) + 1
    return counts


def sweep_status(counts: dict[str, int], signalled: bool) -> str:
    """The parent run's outcome: interrupted (a signal), failed (a trial failed or never ended), or completed."""
    if signalled:
        return "interrupted"
    return "failed" if counts.get("failed") or counts.get("interrupted") else "completed"


def reconcile(client, context: SweepContext, results) -> dict[str, int]:
    """Set each trial's MLflow run to its Tune outcome; returns counts per status and unsynced trials."""
    counts = tune_counts(results)
    for result, trial in tune_trials(results):
        status = trial_status(result, trial.status)
        metrics = result.metrics or {}
        run = find_trial_run(client, context.experiment_id, context.parent_run_id, trial.trial_id)
        if (run is None and metrics) or metrics.get("tracking/unsynced", 0):
            counts["unsynced"] = counts.get("unsynced", 0) + 1
        if run is not None and run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, STATUS_TAG, status)
            client.set_terminated(run.info.run_id, run_state(status))
    return counts

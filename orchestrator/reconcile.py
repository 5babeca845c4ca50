"""After a sweep: each trial's outcome from Tune's record, and MLflow's run states brought in line.

Tune's results are the fallback record. A trial stopped early by ASHA, a worker killed before
it could close its run, an interrupted sweep, or a tracking server that went away mid-sweep
all leave MLflow behind Tune; `reconcile` fixes run states at the end of every `driftlab run`
(`orchestrator/sync.py` replays what never reached MLflow).

Outcomes: `completed` / `diverged` / `stopped_drift` (the trial said so; the last: its drift stop rule), `failed` (it raised), `stopped` (Tune
terminated it early: an ASHA decision), `interrupted` (not terminated: the sweep was stopped,
or broke, before the trial ended; a resume runs it).
"""

from __future__ import annotations

from orchestrator.tracking import STATUS_TAG, find_trial_run, run_state
from orchestrator.trainable import SweepContext
from trainables import keys


def outcomes(results, saved: dict[str, str] | None = None) -> list[tuple]:
    """(result, Tune trial, outcome) per trial.

    Tune's status (TERMINATED, ERROR, PENDING, PAUSED, RUNNING) is not public on a ResultGrid; it
    is built from these trials, in this order. After an interrupted fit, Tune has marked every
    trial it stopped TERMINATED in memory: `saved` (statuses from its saved state) tells which had
    really ended.
    """
    trials = results._experiment_analysis.trials
    return [(result, trial, trial_status(result, _ended(trial, saved))) for result, trial in zip(results, trials)]


def _ended(trial, saved: dict[str, str] | None) -> str:
    """The trial's status, TERMINATED only if Tune saved it so (errors are trusted from memory)."""
    if saved is not None and trial.status == "TERMINATED" and saved.get(trial.trial_id) != "TERMINATED":
        return "PENDING"
    return trial.status


def saved_states(experiment_path: str) -> dict[str, str] | None:
    """Trial statuses as Tune saved them last (unfinished trials are saved as PENDING); None if unreadable."""
    from ray.tune import ExperimentAnalysis

    try:
        return {t.trial_id: t.status for t in ExperimentAnalysis(experiment_path).trials}
    except Exception:  # no state saved (e.g. storage not writable): fall back to what Tune holds in memory
        return None


def trial_status(result, state: str) -> str:
    if result.error is not None or state == "ERROR":
        return "failed"
    status = (result.metrics or {}).get("status")
    if status in ("completed", "diverged", "stopped_drift"):
        return status
    return "stopped" if state == "TERMINATED" else "interrupted"


def has_results(result) -> bool:
    return bool(set(result.metrics or {}) - {"trial_id"})


def tune_counts(trials: list[tuple]) -> dict[str, int]:
    """Trials per outcome from Tune's record alone (when MLflow cannot be asked)."""
    counts: dict[str, int] = {}
    for _, _, status in trials:
        counts[status] = counts.get(status, 0) + 1
    return counts


def sweep_status(counts: dict[str, int], signalled: bool) -> str:
    """The parent run's outcome: interrupted (a signal), failed (a trial failed or never ended), or completed."""
    if signalled:
        return "interrupted"
    return "failed" if counts.get("failed") or counts.get("interrupted") else "completed"


def reconcile(client, context: SweepContext, trials: list[tuple]) -> dict[str, int]:
    """Set each trial's MLflow run to its outcome; returns counts per outcome and unsynced trials."""
    counts = tune_counts(trials)
    for result, trial, status in trials:
        run = find_trial_run(client, context.experiment_id, context.parent_run_id, trial.trial_id)
        if (run is None and has_results(result)) or (result.metrics or {}).get(keys.UNSYNCED, 0):
            counts["unsynced"] = counts.get("unsynced", 0) + 1
        if run is not None and run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, STATUS_TAG, status)
            client.set_terminated(run.info.run_id, run_state(status))
    return counts

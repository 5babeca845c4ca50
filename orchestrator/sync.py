"""Replay a sweep from Tune's record into MLflow after a tracking outage.

For every trial Tune knows: its child run (created if it never reached MLflow), each config
param the run lacks, each epoch's metrics not yet logged, the final artifacts (kept in the
trial's last checkpoint in Tune's storage) and its outcome; then the parent run's outcome and
summary when it was left RUNNING. Safe to run twice: nothing already present is written again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.reconcile import has_results, outcomes
from orchestrator.tracking import (STATUS_TAG, create_trial_run, find_trial_run, logged_steps, numeric_metrics,
                                   param_values, run_state)
from orchestrator.configs import trial_config
from orchestrator.trainable import ARTIFACTS_DIR, SweepContext
from trainables import keys

NOT_METRICS = ("config/", keys.UNSYNCED)  # Tune's flattened config and driftlab's own bookkeeping


@dataclass
class Synced:
    runs_created: int = 0
    params: int = 0
    metric_values: int = 0
    artifact_files: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def sync(client, context: SweepContext, results) -> Synced:
    done = Synced()
    for result, trial, status in outcomes(results):
        done.counts[status] = done.counts.get(status, 0) + 1
        if not has_results(result) or result.metrics_dataframe is None or result.metrics_dataframe.empty:
            continue  # never started: nothing to replay
        run_id = _run_for(client, context, result, trial, done)
        _replay_metrics(client, run_id, result, done)
        _replay_artifacts(client, run_id, result, done)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, STATUS_TAG, status)
            client.set_terminated(run_id, run_state(status))
    return done


def _run_for(client, context: SweepContext, result, trial, done: Synced) -> str:
    """The trial's run, created if missing; with every config param it lacks."""
    from mlflow.entities import Param

    config = trial_config(result.config).to_dict()
    run = find_trial_run(client, context.experiment_id, context.parent_run_id, trial.trial_id)
    if run is None:
        done.runs_created += 1
        done.params += len(config)
        return create_trial_run(client, context.experiment_id, context.parent_run_id, trial.trial_id, str(trial),
                                config, {})
    missing = {k: v for k, v in param_values(config).items() if k not in run.data.params}
    if missing:
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in missing.items()])
        done.params += len(missing)
    return run.info.run_id


def _replay_metrics(client, run_id: str, result, done: Synced) -> None:
    from mlflow.entities import Metric

    present = logged_steps(client, run_id)
    for row in result.metrics_dataframe.to_dict("records"):
        step = int(row.get("epoch", 0))
        values = {k: v for k, v in numeric_metrics(row).items()
                  if "/" in k and not k.startswith(NOT_METRICS) and math.isfinite(v)}
        if step in present or not values:
            continue
        stamp = int(float(row.get("timestamp", 0)) * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, stamp, step) for k, v in values.items()])
        present.add(step)
        done.metric_values += len(values)


def _replay_artifacts(client, run_id: str, result, done: Synced) -> None:
    """Upload the final artifacts from the trial's last checkpoint when the run lacks any of them."""
    if result.checkpoint is None:
        return
    with result.checkpoint.as_directory() as directory:
        artifacts = Path(directory) / ARTIFACTS_DIR
        if not artifacts.is_dir():
            return
        have = {Path(a.path).name for a in client.list_artifacts(run_id)}
        files = [p.name for p in artifacts.iterdir() if p.is_file()]
        if set(files) - have:
            client.log_artifacts(run_id, str(artifacts))
            done.artifact_files += len(set(files) - have)


def replay_spec(client, parent_run_id: str, copy: Path | None) -> int:
    """Upload the spec kept in the storage when the parent run lacks it; the number of files uploaded."""
    from orchestrator.parent import SPEC_DIR

    if copy is None or not copy.exists() or client.list_artifacts(parent_run_id, SPEC_DIR):
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # under the spec's own file name, not the hidden copy's
        target = Path(tmp) / copy.name.removeprefix(".").replace(".driftlab-spec", "")
        target.write_bytes(copy.read_bytes())
        client.log_artifact(parent_run_id, str(target), SPEC_DIR)
    return 1

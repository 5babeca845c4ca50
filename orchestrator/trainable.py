"""The Ray Tune function trainable: one driftlab trial, logged to its MLflow child run.

Heavy modules (torch, transformers, the trial) are imported at module import, i.e. once per
Ray worker; with `reuse_actors` a worker runs many trials. Non-hyperparameters (tracking URI,
run ids) arrive through `tune.with_parameters` as a `SweepContext`, never in the config.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune

from orchestrator.configs import trial_config
from orchestrator.tracking import TrialRun
from trainables import keys
from trainables.stop_rule import STATUS as STOPPED_DRIFT
from trainables.trial import Trial
from trainables.wise import wise_metrics

ARTIFACTS_DIR = "artifacts"  # inside the final checkpoint
FINAL = ("completed", "diverged", STOPPED_DRIFT)  # the trial ended itself
# A checkpoint costs a save and Tune's copy to storage every time, and saves only the epochs since the last
# one: worth it once a crashed or interrupted trial would otherwise redo more than a minute of work.
CHECKPOINT_EVERY_S = 60.0


@dataclass(frozen=True)
class SweepContext:
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


def _final_artifacts(trial: Trial, run: TrialRun, directory: Path) -> None:
    """Figures, layer table and trained parts, uploaded before the last report so that a failed upload is
    counted in it; they ride in the final checkpoint, so Tune's storage keeps them for `driftlab sync`."""
    trial.write_artifacts(directory)
    run.log_artifacts(directory)
    run.log_steps(wise_metrics(trial.wise_rows))


def run_driftlab_trial(config: dict, sweep: SweepContext) -> None:
    cfg = trial_config(config)  # specs are validated before launch
    ctx = tune.get_context()
    # Params are the full config, defaults included, so a run alone says how to reproduce it.
    run = TrialRun(sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id, ctx.get_trial_id(),
                   ctx.get_trial_name(), cfg.to_dict())
    run.open({"driftlab.node_id": ray.get_runtime_context().get_node_id()})
    if run.completed_metrics is not None:
        tune.report({**run.completed_metrics, "epoch": cfg.epochs, "status": "completed", keys.UNSYNCED: 0})
        return
    status, seen = "failed", set()
    try:
        trial = Trial(cfg)

        def report(metrics: dict, checkpoint_dir: str | None) -> None:
            run.log(metrics)
            seen.update(k for k, v in metrics.items() if isinstance(v, float))
            out = dict(metrics)
            if metrics.get("status") == "diverged":
                # Searchers and schedulers look up their metric in the last result: give it, as NaN.
                out.update({k: math.nan for k in seen if k not in out})
            with tempfile.TemporaryDirectory(prefix="driftlab-final-") as spare:
                if metrics.get("status") in FINAL:
                    checkpoint_dir = checkpoint_dir or spare
                    _final_artifacts(trial, run, Path(checkpoint_dir) / ARTIFACTS_DIR)
                if checkpoint_dir:
                    run.flush()  # what a checkpoint marks as done is in MLflow, or counted as unsynced
                out[keys.UNSYNCED] = run.unsynced  # after the upload and the flush: a failed one counts
                checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
                tune.report(out, checkpoint=checkpoint)

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            final = trial.run(report, checkpoint_every_s=CHECKPOINT_EVERY_S)
        else:
            with checkpoint.as_directory() as directory:
                final = trial.run(report, directory, checkpoint_every_s=CHECKPOINT_EVERY_S)
        status = final.get("status", "completed")
    except SystemExit:
        # Tune ends a trial early (an ASHA decision) by exiting its thread inside tune.report.
        status = "stopped"
        raise
    finally:
        run.close(status)

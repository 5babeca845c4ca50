"""The sweep's MLflow experiment and parent run: created once, found again on resume.

The parent run records what a reader needs to reproduce the sweep: the spec (artifact), the
git commit, package versions and per-trial resources. Resuming a sweep (Tune state exists
under the same name) reuses the experiment's latest parent run.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from orchestrator.spec import Spec
from orchestrator.storage import beside
from orchestrator.tracking import KIND_TAG, STATUS_TAG, run_state
from trainables import keys
from trainables.keys import EXPERIMENT_KIND

SPEC_DIR = "spec"  # the parent run's artifact folder holding the spec
PACKAGES = ("driftlab", "torch", "ray", "transformers", "peft", "mlflow", "optuna", "datasets", "numpy", "scipy")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def open_parent(client, spec: Spec, resuming: bool, trial_count: int | str) -> tuple[str, str]:
    """(experiment_id, parent_run_id): the sweep's latest parent run when resuming, else a new one."""
    from analysis.mlflow_io import latest_sweep_run

    experiment = client.get_experiment_by_name(spec.name)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(spec.name, tags=EXPERIMENT_KIND))
    latest = latest_sweep_run(client, experiment_id) if resuming else None
    if latest is not None:
        client.update_run(latest, status="RUNNING")
        return experiment_id, latest
    run = client.create_run(experiment_id, run_name=f"{spec.name} sweep", tags={
        KIND_TAG: "sweep", "driftlab.sweep": spec.name, "git_commit": git_commit(), STATUS_TAG: "running",
        "mlflow.note.content": spec.description or spec.name})
    parent = run.info.run_id
    from mlflow.entities import Param

    params = {**{f"version.{k}": v for k, v in package_versions().items()},
              **{f"resources.{k}": v for k, v in spec.resources.items()},
              "trials": trial_count, "max_failures": spec.max_failures, "max_concurrent": spec.max_concurrent}
    client.log_batch(parent, params=[Param(k, str(v)) for k, v in params.items()])  # one request, not ~20
    return experiment_id, parent


def spec_copy(storage: str, name: str) -> Path | None:
    """Where a local Tune storage keeps the sweep's spec for `driftlab sync` (None for s3://, gs://)."""
    return beside(storage, name, "driftlab-spec.yaml")


def upload_spec(client, parent_run_id: str, spec: Spec, storage: str) -> bool:
    """The spec as the parent's artifact (kept in the storage too, so sync can replay a failed upload)."""
    copy = spec_copy(storage, spec.name)
    if copy is not None:
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(Path(spec.source).read_bytes())
    try:
        client.log_artifact(parent_run_id, spec.source, SPEC_DIR)
        return True
    except Exception:  # a server failing uploads must not stop the sweep; sync uploads it later
        return False


def find_parent(client, name: str) -> tuple[str, str]:
    """(experiment_id, latest parent run id) of a sweep already in MLflow."""
    from analysis.mlflow_io import latest_sweep_run

    experiment = client.get_experiment_by_name(name)
    latest = None if experiment is None else latest_sweep_run(client, experiment.experiment_id)
    if latest is None:
        raise LookupError(f"no MLflow parent run for sweep {name!r}")
    return experiment.experiment_id, latest


def summary(trials: int, counts: dict[str, int], wall_s: float | None = None) -> dict[str, float]:
    """The parent run's summary metrics: trials, a count per outcome (and unsynced), the wall time."""
    out = {keys.sweep("trials"): float(trials), **{keys.sweep(k): float(v) for k, v in counts.items()}}
    if wall_s is not None:
        out[keys.sweep("wall_s")] = wall_s
    return out


def close_parent(client, parent_run_id: str, status: str, summary: dict[str, float]) -> None:
    """End the parent run: completed -> FINISHED, interrupted -> KILLED, failed -> FAILED (tagged likewise)."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in summary.items()])
    client.set_tag(parent_run_id, STATUS_TAG, status)
    client.set_terminated(parent_run_id, run_state(status))

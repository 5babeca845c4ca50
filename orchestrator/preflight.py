"""Checks `driftlab run` makes before anything starts (no MLflow server, no Ray, no parent run).

Each raises `PreflightError` with one line naming the flag or spec field and what is accepted:
the tracking URI must be an MLflow server, a local run's per-trial resources must fit this
machine, and the Tune storage must be writable. Found after launch, each of these failed
inside every trial or hung the sweep.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from orchestrator.spec import Spec


class PreflightError(ValueError):
    """Bad input found before launch; the message is one line naming the field."""


def check_tracking_uri(uri: str) -> None:
    """Only an http(s) MLflow server works: trials log from other processes (and nodes) with their own cwd.

    A bare path or `sqlite:///rel.db` would be opened relative to each trial's working directory
    (one database per trial), and a file store cannot proxy artifacts; so these are refused here.
    """
    if uri.startswith(("http://", "https://")):
        return
    raise PreflightError(
        f"tracking-uri: {uri!r} is not an http(s) MLflow server URL; omit --tracking-uri for a local server "
        "over DRIFTLAB_HOME/mlflow (set DRIFTLAB_HOME to choose the directory), or start `mlflow server` and "
        "pass its http:// URL")


def local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def check_local_resources(spec: Spec, num_cpus: int | None) -> None:
    """Per-trial resources must fit the local Ray (no --address), or Tune waits for them forever."""
    cpus = num_cpus or os.cpu_count() or 1
    need = spec.resources.get("cpu", 1.0)
    if need > cpus:
        raise PreflightError(f"resources.cpu: {need:g} per trial is more than the {cpus} CPUs of the local Ray "
                             "(no --address); lower it, or pass --address of a cluster that has them")
    gpus_needed = spec.resources.get("gpu", 0.0)
    if gpus_needed > 0 and gpus_needed > local_gpus():
        raise PreflightError(f"resources.gpu: {gpus_needed:g} per trial but this machine has {local_gpus()} "
                             "GPU(s) (local Ray, no --address); lower it or pass --address of a GPU cluster")


def check_storage(storage: str, name: str) -> None:
    """A local Tune storage path must be a directory this process can write (probed, as root ignores modes)."""
    if "://" in storage:
        return  # s3://, gs://: checked by pyarrow when Tune first writes
    for directory in (Path(storage) / name, Path(storage)):
        if directory.exists():
            _probe_write(directory, storage)
    if not Path(storage).exists():  # Tune will create it: its nearest existing ancestor must take it
        _probe_write(next(p for p in Path(storage).absolute().parents if p.exists()), storage)


def _probe_write(directory: Path, storage: str) -> None:
    if not directory.is_dir():
        raise PreflightError(f"storage: {str(directory)!r} is not a directory; --storage needs a writable directory")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".driftlab-probe-"):
            pass
    except OSError as err:
        raise PreflightError(f"storage: {storage!r} is not writable ({err.strerror}: {directory}); Tune keeps "
                             "its experiment state and checkpoints there") from None

"""Where Tune keeps a sweep's state: the storage root and a sweep's experiment path under it."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.tracking import driftlab_home


def storage_root(given: str | None) -> str:
    """--storage, else $DRIFTLAB_STORAGE, else DRIFTLAB_HOME/runs."""
    return given or os.environ.get("DRIFTLAB_STORAGE") or str(driftlab_home() / "runs")


def experiment_path(storage: str, name: str) -> str:
    """The sweep's Tune experiment directory: a local path, or a URI (s3://, gs://) joined with `/`."""
    return f"{storage.rstrip('/')}/{name}" if "://" in storage else str(Path(storage) / name)

"""Where Tune keeps a sweep's state: the storage root, a sweep's experiment path under it, and driftlab's
own files beside it (the sweep lock, the spec copy `driftlab sync` uploads)."""

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


def beside(storage: str, name: str, suffix: str) -> Path | None:
    """`STORAGE/.NAME.<suffix>`, a driftlab file beside a local sweep's Tune directory (None for s3://, gs://)."""
    return None if "://" in storage else Path(storage) / f".{name}.{suffix}"

"""Rendered embedded-world splits, kept on disk so each process renders a split once per machine.

Rendering the world's splits costs about a second of CPU, paid by every process that builds a
trial: each `driftlab trial`, each Ray worker of a sweep. The world is a pure function of its
code, numpy's generators and (n, seed), so a split is stored under a key of exactly those and
read back in milliseconds. Files live under `$XDG_CACHE_HOME/driftlab/world` (default
`~/.cache/driftlab/world`), are written atomically (a concurrent writer only wastes its own
render) and are read without pickle; a missing, unreadable or unwritable cache only means
rendering again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from trainables import world


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "driftlab" / "world"


@functools.lru_cache(maxsize=1)
def _code_key() -> str:
    """What a rendered world depends on besides (n, seed): the world's source and numpy's version."""
    digest = hashlib.sha256(Path(world.__file__).read_bytes())
    digest.update(np.__version__.encode())
    return digest.hexdigest()[:16]


def cache_path(n: int, seed: int) -> Path:
    return cache_dir() / f"world-{_code_key()}-n{n}-seed{seed}.npz"


def load_world(n: int, seed: int) -> world.World:
    """The world's split of n samples from seed: from the disk cache when there, else rendered and stored."""
    try:
        path = cache_path(n, seed)
    except (OSError, RuntimeError):  # no home directory to keep it in
        return world.generate(n, seed)
    try:
        return _read(path)
    except (OSError, ValueError, KeyError):
        pass  # not there yet, or damaged: render it
    rendered = world.generate(n, seed)
    _write(path, rendered)
    return rendered


def _read(path: Path) -> world.World:
    with np.load(path, allow_pickle=False) as stored:
        labels = {name: stored[f"label_{name}"] for name in world.ATTRIBUTES}
        return world.World(images=stored["images"], labels=labels, boxes=stored["boxes"],
                           captions=[str(c) for c in stored["captions"]])


def _write(path: Path, rendered: world.World) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, images=rendered.images, boxes=rendered.boxes, captions=np.array(rendered.captions),
                     **{f"label_{name}": values for name, values in rendered.labels.items()})
        os.replace(tmp, path)  # atomic: a reader sees the whole file or none
    except OSError:
        # A read-only or full disk: the render is still used, only not kept.
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

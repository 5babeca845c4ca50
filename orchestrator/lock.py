"""Advisory file locks: one live driver per sweep name, one MLflow store created at a time.

    with SweepLock(storage, name):   # SweepLocked (one line: who holds it, since when) if live
        ...run or resume the sweep...

`flock` locks belong to an open file and the kernel drops them when the holder exits, however
it exits: a driver killed with SIGKILL leaves a stale lock *file* (its holder line stays for
the record) but no lock, so a resume is never blocked by it. The descriptor is not inherited
by children (Python opens files non-inheritable), so a Ray worker or MLflow server that
outlives its driver does not keep the sweep locked.

Local storage keeps the lock beside the sweep's Tune directory, so two machines sharing an
NFS storage path also exclude each other; remote storage (s3://, gs://) is locked per
machine, under DRIFTLAB_HOME/locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path


class SweepLocked(RuntimeError):
    """Another live driver holds the sweep; the message is one line."""


def lock_path(storage: str, name: str) -> Path:
    from orchestrator.storage import beside
    from orchestrator.tracking import driftlab_home

    local = beside(storage, name, "driftlab-lock")
    if local is not None:
        return local
    digest = hashlib.sha256(storage.encode()).hexdigest()[:12]
    return driftlab_home() / "locks" / f"{digest}-{name}.lock"


class SweepLock:
    """Held from `acquire` until `release` or the end of the process."""

    def __init__(self, storage: str, name: str):
        self.path, self.name = lock_path(storage, name), name
        self.fd: int | None = None

    def acquire(self) -> "SweepLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise SweepLocked(f"name: sweep {self.name!r} is already running ({holder}); wait for it to end, "
                              f"stop it, or pick another --name (lock: {self.path})") from None
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "SweepLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(raw: bytes) -> str:
    try:
        holder = json.loads(raw.decode() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["since"])))
        return f"pid {holder['pid']} on {holder['host']}, since {since}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


@contextlib.contextmanager
def exclusive(path: Path):
    """Block until this process alone holds `path` (e.g. while an MLflow store is created or migrated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

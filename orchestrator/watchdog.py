"""A watchdog process: when its driver dies, even by SIGKILL, stop what the driver started.

    watchdog.start()                                      # early in `driftlab run` / `ui` / `sync`
    watchdog.stop_last(server_pid)                        # stopped after the runs are closed
    watchdog.note(tracking_uri=uri, experiment_id=e, parent_run_id=p)   # closed as KILLED if left RUNNING

A driver killed with SIGKILL runs no cleanup. Ray fate-shares its GCS and raylet with the
driver, but the raylet's children (trial workers, dashboard and runtime-env agents) are
orphaned, and the MLflow server runs in a process group of its own. The watchdog is a small
separate process in its own session (so a kill of the driver's process group spares it),
told of the driver's death by the kernel (PR_SET_PDEATHSIG on Linux; polling elsewhere). It
remembers the driver's descendants every half second; when the driver is gone it kills the
remembered processes and the process groups they lead, marks the sweep's MLflow runs still
RUNNING as KILLED, then stops the MLflow server. After a normal exit it finds nothing left
and exits at once. Processes born in the last half second before a SIGKILL can escape it.

    python -m orchestrator.watchdog DRIVER_PID STATE_FILE    (started by `start`, not by hand)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLL_S = 0.5
GRACE_S = 10.0  # for the MLflow server to stop on SIGTERM before SIGKILL
_state: dict = {}
_state_file: Path | None = None


# ---- the driver's side -----------------------------------------------------------------------

def start() -> None:
    """Start this process's watchdog (once; later calls do nothing)."""
    global _state_file
    if _state_file is not None:
        return
    _state_file = Path(tempfile.mkdtemp(prefix="driftlab-watchdog-")) / "state.json"
    _write()
    subprocess.Popen([sys.executable, "-m", "orchestrator.watchdog", str(os.getpid()), str(_state_file)],
                     start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     cwd=str(Path(__file__).resolve().parents[1]))


def note(**values) -> None:
    """Tell the watchdog what to close or stop last (an atomic rewrite of its state file)."""
    _state.update(values)
    if _state_file is not None:
        _write()


def stop_last(group: int) -> None:
    """A process group (an MLflow server) to stop after the runs are closed, beside earlier ones."""
    note(last_groups=[*_state.get("last_groups", []), group])


def _write() -> None:
    tmp = _state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(_state))
    os.replace(tmp, _state_file)


# ---- the watchdog's side ---------------------------------------------------------------------

def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent dies (the handler below only wakes the loop)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def watch(driver_pid: int) -> dict:
    """Remember the driver's descendants until it is gone; returns them by pid."""
    import psutil

    known: dict = {}
    try:
        driver = psutil.Process(driver_pid)
        while driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE:
            for child in driver.children(recursive=True):
                known.setdefault(child.pid, child)
            time.sleep(POLL_S)
    except psutil.NoSuchProcess:
        pass
    known.pop(os.getpid(), None)
    return known


def _alive(procs) -> list:
    import psutil

    out = {}
    for proc in procs:
        try:
            if proc.is_running() and proc.pid != os.getpid():
                for p in [proc, *proc.children(recursive=True)]:
                    out[p.pid] = p
        except psutil.Error:
            continue
    return list(out.values())


def _signal_all(procs, sig: int) -> None:
    """Signal each process, and the whole group of each one that leads a group (late children too)."""
    for proc in procs:
        try:
            if os.getpgid(proc.pid) == proc.pid and proc.pid != os.getpgid(0):
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except Exception:  # gone meanwhile (psutil.Error, ProcessLookupError)
            continue


def _stop(procs, grace: float) -> None:
    import psutil

    _signal_all(procs, signal.SIGTERM if grace else signal.SIGKILL)
    if grace:
        _, survivors = psutil.wait_procs(procs, timeout=grace)
        _signal_all(survivors, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=5)


def close_runs(state: dict) -> None:
    """Mark the sweep's runs still RUNNING as KILLED (the trials died with the driver)."""
    uri, parent, experiment = (state.get(k) for k in ("tracking_uri", "parent_run_id", "experiment_id"))
    if not (uri and parent and experiment):
        return
    from orchestrator.tracking import PARENT_TAG, STATUS_TAG, bound_client_retries, run_state

    bound_client_retries()
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([experiment], filter_string=f"tags.`{PARENT_TAG}` = '{parent}' "
                                                          "and attributes.status = 'RUNNING'")
    for run_id in [r.info.run_id for r in runs] + [parent]:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, STATUS_TAG, "interrupted")
            client.set_terminated(run_id, run_state("interrupted"))


def cleanup(known: dict, state: dict) -> None:
    last = set(state.get("last_groups", []))
    procs = _alive(known.values())
    first = [p for p in procs if _pgid(p) not in last]
    _stop(first, grace=0)  # orphans of a dead driver: nothing of theirs is saved by a gentle stop
    try:
        close_runs(state)
    except Exception as err:  # tracking down too: `driftlab run` (resume) or `driftlab sync` fixes the states
        print(f"driftlab watchdog: could not close the MLflow runs ({type(err).__name__})", file=sys.stderr)
    _stop(_alive(p for p in procs if _pgid(p) in last), grace=GRACE_S)


def _pgid(proc) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def main(argv: list[str]) -> int:
    driver_pid, state_file = int(argv[0]), Path(argv[1])
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # a terminal's Ctrl-C is the driver's to handle
    signal.signal(signal.SIGTERM, lambda *_: None)  # pdeathsig: the loop notices the driver is gone
    _die_with_parent()
    known = watch(driver_pid)
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    cleanup(known, state)
    for path in (state_file, state_file.with_suffix(".tmp")):
        path.unlink(missing_ok=True)
    state_file.parent.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

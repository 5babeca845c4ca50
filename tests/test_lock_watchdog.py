"""The sweep lock and the watchdog on plain processes (no Ray, no MLflow): seconds, not minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import yaml

from orchestrator.cli import main as driftlab
from orchestrator.lock import SweepLock, SweepLocked

HOLD = textwrap.dedent("""
    import sys, time
    from orchestrator.lock import SweepLock
    SweepLock(sys.argv[1], sys.argv[2]).acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def _hold(storage, name) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(storage), name], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_live_sweep_refuses_a_second_driver_and_a_killed_ones_lock_is_stale(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    storage = tmp_path / "runs"
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "dup", "trial": {"epochs": 1}}))
    holder = _hold(storage, "dup")
    try:
        assert driftlab(["run", str(spec), "--storage", str(storage)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"driftlab: name: sweep 'dup' is already running (pid {holder.pid} on ")
        assert ", since " in err and len(err.splitlines()) == 1
        assert not (tmp_path / "home" / "mlflow").exists()  # refused before anything started
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder's lock file stays behind (its line, for the record) but holds nothing.
    assert (storage / ".dup.driftlab-lock").exists()
    with SweepLock(str(storage), "dup"):
        with pytest.raises(SweepLocked):
            SweepLock(str(storage), "dup").acquire()  # and it excludes others again while held


def test_sync_refuses_a_sweep_that_is_still_running(tmp_path, capsys):
    from ray import tune

    storage = tmp_path / "runs"
    tune_dir = storage / "live"
    tune_dir.mkdir(parents=True)
    holder = _hold(storage, "live")
    try:
        original = tune.Tuner.can_restore
        tune.Tuner.can_restore = staticmethod(lambda path: True)  # an existing Tune record, as far as sync sees
        try:
            assert driftlab(["sync", "live", "--storage", str(storage)]) == 2
        finally:
            tune.Tuner.can_restore = original
        assert capsys.readouterr().err.startswith("driftlab: name: sweep 'live' is already running")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


DRIVER = textwrap.dedent("""
    import subprocess, sys, time
    from orchestrator import watchdog
    watchdog.start()
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    watchdog.note(last_groups=[server.pid])
    print(server.pid, worker.pid, flush=True)
    time.sleep(600)
""")


def _gone(pids, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("kill_group", [False, True])
def test_watchdog_stops_what_a_sigkilled_driver_started(kill_group):
    """SIGKILL of the driver (or of its whole process group) leaves neither its own-session 'server'
    nor its ordinary child behind: the watchdog, in a session of its own, stops both."""
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    server, worker = map(int, driver.stdout.readline().split())
    time.sleep(1.5)  # the watchdog remembers the driver's descendants every half second
    watchdogs = [p.pid for p in psutil.Process(driver.pid).children() if "orchestrator.watchdog" in " ".join(p.cmdline())]
    assert len(watchdogs) == 1
    if kill_group:
        os.killpg(driver.pid, signal.SIGKILL)
    else:
        driver.send_signal(signal.SIGKILL)
    driver.wait()
    try:
        assert _gone([server, worker, *watchdogs], timeout=20), "orphans left behind"
    finally:
        for pid in (server, worker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_watchdog_exits_with_its_driver_after_a_normal_exit():
    code = "import os; from orchestrator import watchdog; watchdog.start(); print(os.getpid())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    mine = f"orchestrator.watchdog {out.stdout.strip()} "

    def left() -> list:
        return [p for p in psutil.process_iter(["cmdline"]) if mine in " ".join(p.info["cmdline"] or []) + " "]
    deadline = time.time() + 15
    while left() and time.time() < deadline:
        time.sleep(0.3)
    assert not left()

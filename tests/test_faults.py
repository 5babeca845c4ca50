"""Faults survived with real processes: signals to a real `driftlab run` / `driftlab ui`, two drivers at
once, a tracking server that fails artifact uploads and then goes down, two servers on a fresh store.

After each: nothing lost (every epoch and artifact in MLflow, after `driftlab sync` where the server was
down), nothing duplicated, no run left RUNNING, no process or port left behind, the outcome reported
as it was (exit code, parent run status).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from orchestrator.tracking import LocalServer, free_port
from tests.test_sweeps import (_wait_for, children, driftlab_cmd, env, history, mlflow_uri,  # noqa: F401
                               run_driftlab, write_spec)

pytestmark = pytest.mark.slow

VARIANTS = [{"method": "ft"}, {"method": "lp"}]
DUMP_MARKS = ("*** SIGTERM received", "*** Aborted", "Stack trace", "Fatal Python error")


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _all_gone(procs: list[psutil.Process], timeout: float = 45) -> list:
    """The processes still alive (zombies count as gone) after waiting up to `timeout`."""
    def alive():
        out = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out
    deadline = time.time() + timeout
    while alive() and time.time() < deadline:
        time.sleep(0.5)
    return [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in alive()]


def _port_free(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _server_port(driver_pid: int) -> int:
    """The port of the local MLflow server a driver started (from its command line)."""
    for p in psutil.Process(driver_pid).children(recursive=True):
        cmd = p.cmdline()
        if "mlflow" in " ".join(cmd) and "server" in cmd and "--port" in cmd:
            return int(cmd[cmd.index("--port") + 1])
    return 0


def _parent(uri: str, name: str):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`driftlab.kind` = 'sweep'")
    assert len(runs) == 1
    return runs[0]


def _start(args, env) -> subprocess.Popen:
    return subprocess.Popen(driftlab_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _logging(uri: str, name: str):
    return lambda: [r for r in children(uri, name) if "val/acc" in r.data.metrics]


def _loopback_only(procs) -> list[str]:
    """Listening sockets of these processes that are not on 127.0.0.1 / ::1."""
    wrong = []
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN and c.laddr.ip not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
                    wrong.append(f"{p.name()} {c.laddr.ip}:{c.laddr.port}")
        except psutil.Error:
            continue
    return wrong


def test_ui_stops_its_server_on_sigterm_and_sigkill_and_refuses_a_busy_port(tmp_path, env):
    (tmp_path / "home" / "mlflow").mkdir(parents=True)
    (tmp_path / "home" / "mlflow" / "mlflow.db").touch()  # an empty store: the server creates its tables
    port = free_port()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        ui = _start(("ui", "--port", str(port)), env)
        try:
            assert ui.stdout.readline().startswith(f"MLflow UI: http://127.0.0.1:{port}")
            procs = _tree(ui.pid)
            second = run_driftlab("ui", "--port", str(port), env=env, timeout=120)
            assert second.returncode == 2 and second.stdout == ""
            assert second.stderr.strip() == (f"driftlab: port: 127.0.0.1:{port} is already in use (another "
                                              "`driftlab ui` or server?); pick another with --port")
            ui.send_signal(sig)
            ui.wait(60)
            assert ui.returncode == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
            assert not _all_gone(procs), "the MLflow server outlived `driftlab ui`"
            assert _wait_for(lambda: _port_free(port), 30, "the port to be free")
        finally:
            if ui.poll() is None:
                os.killpg(ui.pid, signal.SIGKILL)


def test_sigterm_during_mlflow_start_up_leaves_no_server(tmp_path, env):
    spec = write_spec(tmp_path / "early.yaml", "early", VARIANTS, epochs=1)
    driver = _start(("run", spec, "--num-cpus", "2"), env)
    try:
        _wait_for(lambda: _server_port(driver.pid), 60, "the MLflow server to be started")
        procs = _tree(driver.pid)
        driver.send_signal(signal.SIGTERM)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 143, err[-2000:]
    assert "interrupted by SIGTERM before the sweep started" in err
    assert not _all_gone(procs), "the MLflow server outlived the driver"


def _signal_mid_sweep(args, env, uri: str, name: str, sig: int, meanwhile=None) -> tuple:
    """Start a sweep, wait for a trial to log metrics, call `meanwhile(driver, procs)`, send `sig`:
    (exit code, stderr, the driver's process tree as it was before the signal)."""
    driver = _start(args, env)
    try:
        _wait_for(_logging(uri, name), 300, "a trial logging metrics")
        procs = _tree(driver.pid)
        if meanwhile is not None:
            meanwhile(driver, procs)
        driver.send_signal(sig)
        _, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    return driver.returncode, err, procs


def test_a_second_driver_is_refused_and_sigint_marks_the_sweep_interrupted(tmp_path, env, mlflow_uri):
    spec = write_spec(tmp_path / "twice.yaml", "twice", VARIANTS, seeds=(0, 1), epochs=2)
    args = ("run", spec, "--tracking-uri", mlflow_uri, "--num-cpus", "2", "--storage", str(tmp_path / "runs"))

    def second_driver(first, _procs):
        second = run_driftlab(*args, env=env, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.strip().startswith(f"driftlab: name: sweep 'twice' is already running (pid {first.pid} on ")
    code, err, procs = _signal_mid_sweep(args, env, mlflow_uri, "twice", signal.SIGINT, second_driver)
    assert code == 130, err[-3000:]
    assert "INTERRUPTED by SIGINT" in err and "resume it (unfinished" in err and "driftlab run " in err
    parent = _parent(mlflow_uri, "twice")
    assert parent.info.status == "KILLED" and parent.data.tags["driftlab.status"] == "interrupted"
    runs = children(mlflow_uri, "twice")
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    assert not _all_gone(procs), "processes outlived the interrupted driver"


def test_sigterm_mid_sweep_exits_143_cleanly_and_the_resume_logs_each_epoch_once(tmp_path, env, mlflow_uri):
    spec = write_spec(tmp_path / "term.yaml", "term", VARIANTS, seeds=(0, 1), epochs=2)
    args = ("run", spec, "--tracking-uri", mlflow_uri, "--num-cpus", "2", "--storage", str(tmp_path / "runs"))

    def loopback_only(_driver, procs):
        assert not _loopback_only(procs), "a local Ray or MLflow listener is not on loopback"
    code, err, procs = _signal_mid_sweep(args, env, mlflow_uri, "term", signal.SIGTERM, loopback_only)
    assert code == 143, err[-3000:]
    assert not any(mark in err for mark in DUMP_MARKS), err[-3000:]
    assert "INTERRUPTED by SIGTERM" in err and "resume it" in err
    assert _parent(mlflow_uri, "term").info.status == "KILLED"
    assert not [r for r in children(mlflow_uri, "term") if r.info.status == "RUNNING"]
    assert not _all_gone(procs)

    resumed = run_driftlab(*args, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and "4 completed" in resumed.stderr
    runs = children(mlflow_uri, "term")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert history(mlflow_uri, run.info.run_id, "val/acc") == [0, 1, 2], "an epoch lost or logged twice"
    parent = _parent(mlflow_uri, "term")
    assert parent.info.status == "FINISHED" and parent.data.tags["driftlab.status"] == "completed"


def test_sigkill_of_the_driver_leaves_nothing_running_and_the_sweep_resumes(tmp_path, env):
    spec = write_spec(tmp_path / "kill.yaml", "kill", VARIANTS, seeds=(0, 1), epochs=2)
    driver = _start(("run", spec, "--num-cpus", "2"), env)
    try:
        port = _wait_for(lambda: _server_port(driver.pid), 120, "the local MLflow server")
        uri = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _port_free(port) is False and _logging(uri, "kill")(), 300, "a trial logging metrics")
        procs = _tree(driver.pid)
        driver.send_signal(signal.SIGKILL)  # the driver alone, as `kill -9 PID` does
        driver.wait(30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    left = _all_gone(procs, timeout=60)
    assert not left, f"left running after SIGKILL: {left}"
    assert _port_free(port)
    with LocalServer(home=tmp_path / "home") as server:
        assert _parent(server.uri, "kill").info.status == "KILLED"
        assert not [r for r in children(server.uri, "kill") if r.info.status == "RUNNING"]
    resumed = run_driftlab("run", spec, "--num-cpus", "2", env=env)  # the killed driver's lock is stale
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    with LocalServer(home=tmp_path / "home") as server:
        runs = children(server.uri, "kill")
        assert len(runs) == 4 and all(r.data.tags["driftlab.status"] == "completed" for r in runs)
        assert all(history(server.uri, r.info.run_id, "val/acc") == [0, 1, 2] for r in runs)
        assert _parent(server.uri, "kill").info.status == "FINISHED"


def test_failed_uploads_count_as_unsynced_and_sync_restores_runs_params_artifacts_and_the_parent(tmp_path, env):
    from mlflow import MlflowClient

    from tests.proxy import FlakyProxy

    home, storage = tmp_path / "mlflow_home", str(tmp_path / "runs")
    spec = write_spec(tmp_path / "outage.yaml", "outage", VARIANTS, seeds=(0, 1), epochs=2)
    with LocalServer(home=home) as server, FlakyProxy(server.uri) as proxy:
        proxy.fail_artifacts = True  # every artifact upload answers 500
        driver = _start(("run", spec, "--tracking-uri", proxy.uri, "--num-cpus", "2", "--storage", storage), env)
        try:
            # Once the first trial has finished (and failed to upload its artifacts), the server goes down.
            _wait_for(lambda: [r for r in children(server.uri, "outage")
                               if r.data.tags.get("driftlab.status") == "completed"], 300, "a completed trial")
            proxy.down = True
            _, err = driver.communicate(timeout=600)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
        assert driver.returncode == 0, err[-3000:]
        assert "4 completed" in err and "4 unsynced" in err and "driftlab sync outage" in err
        assert "could not upload the spec to the parent run" in err
        assert any(f.startswith("PUT") for f in proxy.failed)
        assert _parent(server.uri, "outage").info.status == "RUNNING"  # could not be closed: MLflow was down

        synced = run_driftlab("sync", "outage", "--tracking-uri", server.uri, "--storage", storage, env=env)
        assert synced.returncode == 0, synced.stderr[-3000:]
        assert "parent run completed" in synced.stdout
        client = MlflowClient(server.uri)
        runs = children(server.uri, "outage")
        assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
        for run in runs:
            assert history(server.uri, run.info.run_id, "val/acc") == [0, 1, 2]
            assert {"lr", "method", "seed", "dataset"} <= set(run.data.params)
            assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
                "attention_heatmaps.png", "entropy_by_layer.png", "layer_metrics.csv", "trained_parts.safetensors"}
        parent = _parent(server.uri, "outage")
        assert parent.info.status == "FINISHED" and parent.data.tags["driftlab.status"] == "completed"
        assert [a.path for a in client.list_artifacts(parent.info.run_id, "spec")] == ["spec/outage.yaml"]

        again = run_driftlab("sync", "outage", "--tracking-uri", server.uri, "--storage", storage, env=env)
        assert again.returncode == 0 and "0 runs created, 0 params, 0 metric values written, 0 artifact" in again.stdout
        analysed = run_driftlab("analyze", "--experiment", "outage", "--tracking-uri", server.uri,
                                "--out", str(tmp_path / "analysis"), env=env)
        assert analysed.returncode == 0, analysed.stderr[-3000:]

    fresh = run_driftlab("sync", "outage", "--storage", storage, env=env)  # DRIFTLAB_HOME's store never saw it
    assert fresh.returncode == 2 and fresh.stderr.strip().startswith("driftlab: name: MLflow at http://127.0.0.1:")
    assert "has no parent run of sweep 'outage'" in fresh.stderr and len(fresh.stderr.strip().splitlines()) == 1


def test_two_servers_on_a_fresh_store_start_one_after_the_other(tmp_path):
    code = ("import sys; from pathlib import Path; from orchestrator.tracking import LocalServer; "
            "s = LocalServer(home=Path(sys.argv[1])); s.start(); print('healthy'); s.stop()")
    starts = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "home")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in starts]
    assert [p.returncode for p in starts] == [0, 0], [err[-2000:] for _, err in outs]
    assert all(out.strip() == "healthy" for out, _ in outs)

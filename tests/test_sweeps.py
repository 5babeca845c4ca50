"""Sweeps on real services: a real MLflow server, a real local Ray and a real two-node Ray cluster.

Every process started here is stopped here. Faults covered: a trial that crashes once, a
trial whose loss goes non-finite, a worker node killed mid-sweep, the driver SIGKILLed
mid-sweep and resumed; and `ray job submit`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.tracking import LocalServer
from tests.faults import CRASH_SEED, NAN_SEED
from tests.services import RayCluster, service_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

SMALL = {"model": "embedded", "dataset": "embedded/size", "epochs": 2, "data_fraction": 0.25,
         "zeroshot_size": 120, "probe_size": 16}


def write_spec(path, name, variants, seeds=(0,), **trial) -> str:
    spec = {"name": name, "trial": {**SMALL, **trial}, "grid": {"seed": list(seeds)}, "variants": variants,
            "resources": {"cpu": 1}, "max_failures": 2}
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def driftlab_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", *args]


def run_driftlab(*args, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(driftlab_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)


def children(uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], filter_string="tags.`driftlab.kind` = 'trial'",
                              max_results=1000) if exp else []


def history(uri: str, run_id: str, key: str) -> list[int]:
    from mlflow import MlflowClient

    return sorted(int(m.step) for m in MlflowClient(uri).get_metric_history(run_id, key))


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    server = LocalServer(home=tmp_path_factory.mktemp("mlflow_home")).start()
    yield server.uri
    server.stop()


@pytest.fixture
def env(tmp_path):
    import shutil
    import tempfile

    # A local `driftlab run` starts its own Ray: give it a private temp dir (short: Ray's socket paths
    # must stay under the OS limit) so it never meets another Ray on this machine.
    ray_tmp = tempfile.mkdtemp(prefix="dlr", dir="/tmp")
    yield service_env(DRIFTLAB_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                      RAY_TMPDIR=ray_tmp)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_local_sweep_retries_a_crash_marks_divergence_and_tracks_every_trial(tmp_path, env, mlflow_uri):
    # `python -m tests.faults` is `driftlab run` with the trainable wrapped: one trial crashes once after
    # its first epoch, one trial's loss turns NaN (see tests/faults.py).
    # Also: ft sweeps WiSE-FT at its end; LoRA carries a drift stop rule that fires at epoch 1 (its
    # embedding drift is >= 0 > -1).
    spec = write_spec(tmp_path / "faults.yaml", "faults", [
        {"method": "ft", "wise_alphas": [0, 1]}, {"method": "lora", "stop_metric": "drift/embedding", "stop_above": -1},
        {"method": "ft", "seed": CRASH_SEED}, {"method": "ft", "seed": NAN_SEED}])
    proc = subprocess.run([sys.executable, "-m", "tests.faults", "run", spec, "--tracking-uri", mlflow_uri,
                           "--num-cpus", "2"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 completed" in proc.stderr and "1 stopped_drift" in proc.stderr and "1 diverged" in proc.stderr
    assert "Configuration for experiment" not in proc.stdout + proc.stderr and "tensorboard" not in proc.stdout
    from mlflow import MlflowClient
    experiment = MlflowClient(mlflow_uri).get_experiment_by_name("faults")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    page = f"{mlflow_uri}/#/experiments/{experiment.experiment_id}?workflowType=machine_learning"
    assert page in proc.stderr
    runs = children(mlflow_uri, "faults")
    assert len(runs) == 4 and len({r.data.tags["driftlab.trial_id"] for r in runs}) == 4
    assert all(r.info.status == "FINISHED" for r in runs)
    by_seed = {int(r.data.params["seed"]): r for r in runs if r.data.params["method"] == "ft"}
    crashed, diverged, swept = by_seed[CRASH_SEED], by_seed[NAN_SEED], by_seed[0]
    assert crashed.data.tags["driftlab.status"] == "completed" and crashed.data.tags["driftlab.attempts"] == "2"
    assert diverged.data.tags["driftlab.status"] == "diverged"
    stopped = next(r for r in runs if r.data.params["method"] == "lora")
    assert stopped.data.tags["driftlab.status"] == "stopped_drift"
    assert stopped.data.metrics["stop/epoch"] == 1 and stopped.data.metrics["best/epoch"] == 1
    assert history(mlflow_uri, swept.info.run_id, "wise/test/acc") == [0, 100]
    assert {"wise_frontier.csv", "wise_frontier.png", "trained_tower.safetensors"} <= {
        a.path for a in MlflowClient(mlflow_uri).list_artifacts(swept.info.run_id)}
    for run in runs:
        if run is diverged:
            continue
        assert history(mlflow_uri, run.info.run_id, "val/acc") == ([0, 1] if run is stopped else [0, 1, 2])
        assert "zeroshot/embedded_colour/retention" in run.data.metrics
        names = {a.path for a in MlflowClient(mlflow_uri).list_artifacts(run.info.run_id)}
        assert {"attention_heatmaps.png", "entropy_by_layer.png", "layer_metrics.csv",
                "trained_parts.safetensors"} <= names
    # The resumable crash restarted from its epoch-1 checkpoint: one value per epoch, none twice.
    assert history(mlflow_uri, crashed.info.run_id, "train/loss") == [1, 2]

    # The analysis reads the same sweep back from MLflow and logs its report under the parent run.
    out = tmp_path / "analysis"
    analysed = run_driftlab("analyze", "--experiment", "faults", "--tracking-uri", mlflow_uri, "--out", str(out),
                            env=env)
    assert analysed.returncode == 0, analysed.stderr[-3000:]
    assert page in analysed.stderr
    report = (out / "report.md").read_text()
    assert "3 completed trial(s) analysed, 1 excluded" in report and "diverged" in report
    from mlflow import MlflowClient
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("faults")
    analysis_runs = client.search_runs([exp.experiment_id], filter_string="tags.`driftlab.kind` = 'analysis'")
    assert len(analysis_runs) == 1
    assert "report.md" in {a.path for a in client.list_artifacts(analysis_runs[0].info.run_id)}

    # WiSE-FT on the finished, drift-stopped LoRA run from its saved parts: α = 0 is the pretrained
    # model's zero-shot accuracy (its epoch 0), α = 1 the selected model's test accuracy.
    from orchestrator.cli import main as driftlab

    run_id = stopped.info.run_id
    assert driftlab(["wise", run_id, "--alphas", "0,1", "--tracking-uri", mlflow_uri]) == 0
    metric = lambda key: {int(m.step): m.value for m in client.get_metric_history(run_id, key)}
    assert metric("wise/zeroshot/embedded_colour/acc")[0] == metric("zeroshot/embedded_colour/acc")[0]
    assert metric("wise/test/acc")[100] == stopped.data.metrics["best/test/acc"]


def test_local_store_is_started_and_stopped_and_a_finished_sweep_is_not_rerun(tmp_path, env):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", [{"method": "lp"}], seeds=(0, 1), epochs=1)
    first = run_driftlab("run", spec, "--num-cpus", "2", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "driftlab ui" in first.stderr
    home = tmp_path / "home"
    assert (home / "mlflow" / "mlflow.db").exists()
    import psutil
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(home) in " ".join(p.info["cmdline"] or [])]
    assert not leftovers, "the local MLflow server must be stopped after the run"
    again = run_driftlab("run", spec, "--num-cpus", "2", env=env)
    assert again.returncode == 0 and "resuming" in again.stderr
    with LocalServer(home=home) as server:
        runs = children(server.uri, "tiny")
        assert len(runs) == 2 and all(r.data.tags["driftlab.attempts"] == "1" for r in runs)

    # `driftlab ui` serves the same store on 127.0.0.1 and stops its server on Ctrl-C.
    from orchestrator.tracking import free_port
    import urllib.request
    port = free_port()
    ui = subprocess.Popen(driftlab_cmd("ui", "--port", str(port)), env=env, stdout=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/health"), 120, "the UI server")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
                                    timeout=10) as resp:
            assert b"tiny" in resp.read()
        shown = _read_until(ui.stdout, "tiny: ", 120)  # each sweep's page in the UI
        assert f"tiny: http://127.0.0.1:{port}/#/experiments/" in shown and "workflowType=machine_learning" in shown
    finally:
        ui.send_signal(signal.SIGINT)
        ui.wait(60)
    assert not _healthy(f"http://127.0.0.1:{port}/health")


def _read_until(stream, text: str, timeout: float) -> str:
    """A process's stdout until it holds `text` (or the timeout passes); raw reads, so no buffer hides lines."""
    import select
    seen, deadline = "", time.time() + timeout
    while text not in seen and time.time() < deadline:
        if select.select([stream], [], [], 1)[0]:
            chunk = os.read(stream.fileno(), 4096).decode()
            if not chunk:
                break
            seen += chunk
    return seen


def _healthy(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = RayCluster(tmp_path_factory.mktemp("ray"))
    try:  # stop() also cleans up after a `ray start` that failed halfway
        c.start_head(num_cpus=1)
        c.add_worker(num_cpus=1)
        c.wait_nodes(2)
        yield c
    finally:
        c.stop()


def test_sweep_runs_on_both_nodes_and_through_ray_job_submit(tmp_path, env, mlflow_uri, cluster):
    spec = write_spec(tmp_path / "spread.yaml", "spread", [{"method": "ft"}, {"method": "lora"}], seeds=(0, 1))
    proc = run_driftlab("run", spec, "--address", cluster.address, "--tracking-uri", mlflow_uri,
                        "--storage", str(tmp_path / "runs"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = children(mlflow_uri, "spread")
    assert len(runs) == 4
    assert len({r.data.tags["driftlab.node_id"] for r in runs}) == 2, "trials should use both nodes"

    job_env = json.dumps({"env_vars": {"HF_HUB_OFFLINE": "1", "DRIFTLAB_HOME": str(tmp_path / "jobhome")}})
    job = subprocess.run(
        [str(os.path.join(os.path.dirname(sys.executable), "ray")), "job", "submit", "--address",
         f"http://127.0.0.1:{cluster.dashboard_port}", "--runtime-env-json", job_env, "--",
         sys.executable, "-m", "orchestrator.cli", "run", spec, "--name", "jobsweep", "--address", "auto",
         "--tracking-uri", mlflow_uri, "--storage", str(tmp_path / "jobruns")],
        env=env, capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-2000:]
    assert len(children(mlflow_uri, "jobsweep")) == 4


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_driver_killed_mid_sweep_resumes_without_rerunning_or_duplicating(tmp_path, env, mlflow_uri, cluster):
    spec = write_spec(tmp_path / "killdriver.yaml", "killdriver", [{"method": "ft"}, {"method": "lora"}],
                      seeds=(0, 1, 2), epochs=3)
    args = ("run", spec, "--address", cluster.address, "--tracking-uri", mlflow_uri,
            "--storage", str(tmp_path / "runs"))
    driver = subprocess.Popen(driftlab_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        # Completed = its run closed FINISHED (the status tag alone is set a moment earlier, with the last epoch).
        done_before = _wait_for(lambda: [r for r in children(mlflow_uri, "killdriver")
                                         if r.data.tags.get("driftlab.status") == "completed"
                                         and r.info.status == "FINISHED"], 300, "a completed trial")
        time.sleep(2)  # let Tune record the completion in its experiment state
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    done_ids = {r.data.tags["driftlab.trial_id"] for r in done_before}
    resumed = run_driftlab(*args, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    runs = children(mlflow_uri, "killdriver")
    assert len(runs) == 6 and len({r.data.tags["driftlab.trial_id"] for r in runs}) == 6, "no duplicate runs"
    assert all(r.info.status == "FINISHED" and r.data.tags["driftlab.status"] == "completed" for r in runs)
    for run in runs:
        if run.data.tags["driftlab.trial_id"] in done_ids:
            assert run.data.tags["driftlab.attempts"] == "1", "a completed trial was rerun"
            assert history(mlflow_uri, run.info.run_id, "val/acc") == [0, 1, 2, 3]


def test_worker_node_killed_mid_sweep_its_trials_are_rescheduled(tmp_path, env, mlflow_uri, cluster):
    import ray

    worker_port = cluster.add_worker(num_cpus=1)  # a fresh node to kill, beside the fixture's two
    cluster.wait_nodes(3)
    spec = write_spec(tmp_path / "killnode.yaml", "killnode", [{"method": "ft"}, {"method": "adapter"}],
                      seeds=(0, 1), epochs=4)
    driver = subprocess.Popen(driftlab_cmd("run", spec, "--address", cluster.address, "--tracking-uri", mlflow_uri,
                                           "--storage", str(tmp_path / "runs")),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        out = subprocess.run([sys.executable, "-c", (
            "import ray, json; ray.init(address='%s', logging_level='ERROR'); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive'] and n['NodeManagerPort'] == %d]))")
            % (cluster.address, worker_port)], env=env, capture_output=True, text=True, timeout=120)
        node_id = json.loads(out.stdout.strip().splitlines()[-1])[0]
        victim = _wait_for(lambda: [r for r in children(mlflow_uri, "killnode")
                                    if r.data.tags.get("driftlab.node_id") == node_id
                                    and r.data.tags.get("driftlab.status") == "running"
                                    and r.data.metrics.get("val/acc") is not None], 300,
                           "a trial running on the worker to kill")[0]
        assert cluster.kill_worker(worker_port) > 0
        _, stderr = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, stderr[-3000:]
    runs = children(mlflow_uri, "killnode")
    assert len(runs) == 4 and all(r.data.tags["driftlab.status"] == "completed" for r in runs)
    rescheduled = next(r for r in runs if r.info.run_id == victim.info.run_id)
    assert int(rescheduled.data.tags["driftlab.attempts"]) >= 2
    assert rescheduled.data.tags["driftlab.node_id"] != node_id
    assert not ray.is_initialized()


def test_tracking_server_lost_mid_sweep_the_sweep_finishes_and_sync_restores_mlflow(tmp_path, env):
    from orchestrator.tracking import free_port

    home, port = tmp_path / "mlflow_outage", free_port()
    server = LocalServer(home=home, port=port).start()
    spec = write_spec(tmp_path / "outage.yaml", "outage", [{"method": "ft"}, {"method": "lora"}], seeds=(0, 1),
                      epochs=3)
    storage = str(tmp_path / "runs")
    driver = subprocess.Popen(driftlab_cmd("run", spec, "--tracking-uri", server.uri, "--num-cpus", "2",
                                           "--storage", storage),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _wait_for(lambda: [r for r in children(server.uri, "outage") if "val/acc" in r.data.metrics], 300,
                  "a trial logging metrics")
        server.stop()
        started = time.time()
        _, stderr = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        server.stop()
    assert driver.returncode == 0, stderr[-3000:]
    assert "driftlab sync outage" in stderr and time.time() - started < 300
    with LocalServer(home=home, port=port) as again:
        sync = run_driftlab("sync", "outage", "--tracking-uri", again.uri, "--storage", storage, env=env)
        assert sync.returncode == 0, sync.stderr[-3000:]
        runs = children(again.uri, "outage")
        assert len(runs) == 4
        for run in runs:
            assert history(again.uri, run.info.run_id, "val/acc") == [0, 1, 2, 3]
            assert run.info.status == "FINISHED" and run.data.tags["driftlab.status"] == "completed"
        resync = run_driftlab("sync", "outage", "--tracking-uri", again.uri, "--storage", storage, env=env)
        assert resync.returncode == 0 and "0 metric values written" in resync.stdout


def test_optuna_multi_objective_search_with_asha_saves_the_pareto_front(tmp_path, env, mlflow_uri):
    spec = {"name": "pareto", "trial": {**SMALL, "epochs": 2},
            "search": {"space": {"method": {"choice": ["ft", "lora"]}, "lr": {"loguniform": [1e-4, 1e-2]},
                                 "gta_lambda": {"uniform": [0.0, 1.0]}},
                       "num_samples": 4, "seed": 0,
                       "objectives": {"val/acc": "max", "zeroshot/embedded_colour/retention": "max"}},
            "scheduler": {"type": "asha", "metric": "val/acc", "mode": "max", "grace_period": 1},
            "max_concurrent": 2, "resources": {"cpu": 1}}
    path = tmp_path / "pareto.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = run_driftlab("run", str(path), "--tracking-uri", mlflow_uri, "--num-cpus", "2",
                        "--storage", str(tmp_path / "runs"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Pareto front:" in proc.stderr
    runs = children(mlflow_uri, "pareto")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["driftlab.status"] for r in runs} <= {"completed", "stopped"}
    assert len({round(float(r.data.params["lr"]), 8) for r in runs}) == 4  # Optuna proposed distinct points
    from mlflow import MlflowClient
    client = MlflowClient(mlflow_uri)
    parent = client.get_run(runs[0].data.tags["mlflow.parentRunId"])
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "pareto")} == {
        "pareto/pareto_front.csv", "pareto/pareto_front.png"}
    assert parent.info.status == "FINISHED" and "spec" in {a.path for a in client.list_artifacts(parent.info.run_id)}

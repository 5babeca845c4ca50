"""The MLflow path of the analysis against a real `mlflow server` subprocess (slow).

A sweep parent run with child trial runs is built from the same synthetic table the CSV
tests use; reading it back must give the CSV path's table, and the analysis must land
as a nested run with its files as artifacts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from analysis import analyze, log_to_mlflow, table_from_csv, table_from_mlflow
from analysis.cli import main
from tests.test_analysis import RETENTION, synthetic_table

pytestmark = pytest.mark.slow

EXPERIMENT = "driftlab-analysis-test"
PARAMS = ("dataset", "method", "lr", "seed", "epochs")
STARTUP_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"OK"
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (uvicorn workers included), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    command = [exe, "server", "--backend-store-uri", f"sqlite:///{root / 'db'}",
               "--artifacts-destination", str(root / "art"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


def _log_sweep(client, experiment_id: str, table: pd.DataFrame, status_tags: bool = True) -> str:
    """A parent run tagged as a sweep, one child run per row of `table`; returns the parent id.

    With status_tags the trial status is the driftlab.status tag (runs stay RUNNING, saving
    two round trips each); without, the run is set FINISHED and the reader must fall back to it.
    """
    from mlflow.entities import Metric, Param

    parent = client.create_run(experiment_id, run_name="sweep", tags={"driftlab.kind": "sweep"}).info.run_id
    metric_names = [c for c in table.columns if "/" in c]

    def log_trial(row: dict) -> None:
        tags = {"mlflow.parentRunId": parent, "driftlab.kind": "trial"}
        tags.update({"driftlab.status": row["status"]} if status_tags else {})
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        params = [Param(k, str(row[k])) for k in PARAMS]
        metrics = [Metric(m, float(row[m]), 0, 0) for m in metric_names if pd.notna(row[m])]
        client.log_batch(run_id, metrics=metrics, params=params)
        if not status_tags:
            client.set_terminated(run_id, "FINISHED")

    # A few HTTP round trips per trial: in parallel, or logging dominates the test's time.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(log_trial, table.to_dict("records")))
    client.set_terminated(parent, "FINISHED")
    return parent


@pytest.fixture(scope="module")
def sweep(server):
    import mlflow

    client = mlflow.MlflowClient(server)
    experiment_id = client.create_experiment(EXPERIMENT)
    # An older sweep without status tags: not the default parent, and read via the run status.
    older = _log_sweep(client, experiment_id, synthetic_table(seed=1).head(4), status_tags=False)
    time.sleep(0.05)  # distinct start times, so "latest" is well defined
    parent = _log_sweep(client, experiment_id, synthetic_table())
    return client, parent, older


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    table = table.drop(columns=[c for c in ("run_id", "trial_id") if c in table.columns])
    table = table.sort_values(["dataset", "method", "lr", "seed", "status"]).reset_index(drop=True)
    return table[sorted(table.columns)]


def test_mlflow_and_csv_give_the_same_table(sweep, server, tmp_path):
    _, parent, _ = sweep
    csv = tmp_path / "sweep.csv"
    synthetic_table().to_csv(csv, index=False)
    from_csv = _comparable(table_from_csv(csv))
    latest = _comparable(table_from_mlflow(server, EXPERIMENT))  # default parent: the latest sweep
    explicit = _comparable(table_from_mlflow(server, EXPERIMENT, parent_run_id=parent))
    pd.testing.assert_frame_equal(latest, from_csv, check_exact=True)
    pd.testing.assert_frame_equal(explicit, from_csv, check_exact=True)


def test_run_status_is_the_fallback_without_status_tags(sweep, server):
    _, _, older = sweep
    table = table_from_mlflow(server, EXPERIMENT, older)
    assert len(table) == 4 and set(table["status"]) == {"FINISHED"}
    pd.testing.assert_series_equal(table.sort_values("seed")["seed"].reset_index(drop=True),
                                   pd.Series([0, 0, 1, 2], name="seed"))


def test_log_to_mlflow_nests_an_analysis_run(sweep, server, tmp_path):
    client, parent, _ = sweep
    table = table_from_mlflow(server, EXPERIMENT, parent)
    result = analyze(table, tmp_path / "out", families=["paired"], metrics=[RETENTION])
    assert result.excluded == {"diverged": 1} and len(result.significant) == 2
    run_id = log_to_mlflow(result, server, EXPERIMENT, parent)
    run = client.get_run(run_id)
    assert run.info.run_name == "analysis" and run.info.status == "FINISHED"
    assert run.data.tags["driftlab.kind"] == "analysis" and run.data.tags["mlflow.parentRunId"] == parent
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.md", "tests.csv", "cells.csv"} <= artifacts


def test_cli_reads_mlflow_and_logs_back(sweep, server, tmp_path):
    client, parent, _ = sweep
    out = tmp_path / "out"
    argv = ["--experiment", EXPERIMENT, "--tracking-uri", server, "--out", str(out),
            "--families", "paired", "--metrics", RETENTION, "--log-mlflow"]
    assert main(argv) == 0
    assert (out / "report.md").is_file()
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent}' and tags.`driftlab.kind` = 'analysis'")
    assert len(children) >= 1
    assert main(["--experiment", "no-such-experiment", "--tracking-uri", server]) == 2


def test_early_warning_reads_the_metric_history(server, tmp_path):
    """Per-epoch values logged as steps come back as epoch<k>_ columns; early warning reads them."""
    import mlflow
    from mlflow.entities import Metric, Param

    from tests.test_analysis_signals import EMB, RET, six
    from trainables import keys

    client = mlflow.MlflowClient(server)
    experiment_id = client.create_experiment("driftlab-history-test")
    parent = client.create_run(experiment_id, tags={"driftlab.kind": "sweep"}).info.run_id
    table = six()
    for row in table.to_dict("records"):
        run_id = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent, "driftlab.kind": "trial",
                                                        "driftlab.status": "completed"}).info.run_id
        steps = {EMB: (0.0, row[keys.at_epoch(EMB, 1)], row[EMB]), RET: (100.0, row[RET], row[RET]),
                 keys.VAL_ACC: (50.0, row[keys.VAL_ACC], row[keys.VAL_ACC])}
        metrics = [Metric(key, float(v), 0, step) for key, values in steps.items() for step, v in enumerate(values)]
        client.log_batch(run_id, metrics=metrics,
                         params=[Param(k, str(row[k])) for k in ("dataset", "method", "lr", "seed")])
    read = table_from_mlflow(server, "driftlab-history-test", history=True)
    assert sorted(read[keys.at_epoch(EMB, 1)]) == pytest.approx(sorted(table[keys.at_epoch(EMB, 1)]))
    assert (read[keys.at_epoch(EMB, 0)] == 0).all() and EMB in read.columns
    out = tmp_path / "out"
    assert main(["--experiment", "driftlab-history-test", "--tracking-uri", server, "--out", str(out),
                 "--families", "early_warning", "--early-epochs", "1"]) == 0
    detail = pd.read_csv(out / "early_warning.csv")
    runs = detail[(detail["signal"] == EMB) & (detail["level"] == "runs")]
    assert runs["epoch"].tolist() == [1] and runs["auc"].iloc[0] == pytest.approx(8 / 9)

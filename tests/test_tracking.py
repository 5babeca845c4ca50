"""A trial's MLflow run with async logging: everything arrives once flushed; a failed batch counts as unsynced."""

from __future__ import annotations

import pytest

from orchestrator.tracking import LocalServer, TrialRun
from tests.proxy import FlakyProxy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(home=tmp_path_factory.mktemp("mlflow_home")) as running:
        yield running


def open_run(uri: str, name: str) -> TrialRun:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.create_experiment(name)
    parent = client.create_run(experiment).info.run_id
    run = TrialRun(uri, experiment, parent, trial_id=f"{name}_0", name=f"{name}_0", config={"lr": 0.1, "seed": 3})
    run.open({})
    return run


def test_params_metrics_and_status_arrive_once_flushed(server):
    from mlflow import MlflowClient

    run = open_run(server.uri, "async_ok")
    for epoch in range(3):
        run.log({"epoch": epoch, "status": "completed" if epoch == 2 else "running", "val/acc": 50.0 + epoch})
    run.close("completed")
    stored = MlflowClient(server.uri).get_run(run.run_id)
    assert stored.data.params == {"lr": "0.1", "seed": "3"}
    assert [m.value for m in MlflowClient(server.uri).get_metric_history(run.run_id, "val/acc")] == [50, 51, 52]
    assert stored.data.tags["driftlab.status"] == "completed" and stored.info.status == "FINISHED"
    assert run.unsynced == 0 and run.error is None


def test_a_failed_batch_turns_the_run_offline_and_counts_as_unsynced(server):
    from mlflow import MlflowClient

    with FlakyProxy(server.uri) as proxy:
        run = open_run(proxy.uri, "async_down")
        run.log({"epoch": 0, "status": "running", "val/acc": 50.0})
        run.flush()
        proxy.down = True
        run.log({"epoch": 1, "status": "running", "val/acc": 51.0})  # only enqueued: fails in the background
        run.flush()
        assert run.error is not None and run.unsynced == 1
        run.log({"epoch": 2, "status": "completed", "val/acc": 52.0})  # offline: not sent, counted
        run.close("completed")
        assert run.unsynced == 3  # epoch 1, epoch 2 (with its status tag) and the end of the run
    history = MlflowClient(server.uri).get_metric_history(run.run_id, "val/acc")
    assert [int(m.step) for m in history] == [0]

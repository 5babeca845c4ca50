"""MLflow in and out: a sweep's child trial runs -> tidy table; an analysis -> nested run.

Runs are found by tags the orchestrator sets: the sweep's parent run has
`driftlab.kind = sweep`, each trial run `driftlab.kind = trial`, `driftlab.status` and
`mlflow.parentRunId`. mlflow is imported inside the functions: it takes seconds to
import and the CSV path does not need it. With `history`, the per-epoch values (steps) of
the drift signals, train loss, val accuracy and retention come along as `epoch<k>_<key>`
columns for early warning.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.signals import last_layers
from analysis.table import tidy
from trainables import keys
from trainables.keys import KIND_TAG, PARENT_TAG, STATUS_TAG

if TYPE_CHECKING:
    from analysis.core import AnalysisResult

_PAGE = 1000
_THREADS = 8  # one metric history per request: a few in flight hide the round trips


def _client(tracking_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client, experiment: str, tracking_uri: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise AnalysisInputError(f"--experiment: no MLflow experiment named {experiment!r} at {tracking_uri}")
    return found.experiment_id


def _search(client, experiment_id: str, filter_string: str) -> list:
    """Every active run matching the filter, following page tokens."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=_PAGE,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def latest_sweep_run(client, experiment_id: str) -> str | None:
    """Id of the most recent top-level run tagged driftlab.kind = sweep (None if there is none).

    The one lookup of a sweep's parent run: the orchestrator resumes and analyses through it too.
    """
    sweeps = [r for r in _search(client, experiment_id, f"tags.`{KIND_TAG}` = 'sweep'")
              if PARENT_TAG not in r.data.tags]
    return max(sweeps, key=lambda r: r.info.start_time or 0).info.run_id if sweeps else None


def _sweep_run(client, experiment_id: str, experiment: str) -> str:
    run_id = latest_sweep_run(client, experiment_id)
    if run_id is None:
        raise AnalysisInputError(f"--parent-run: experiment {experiment!r} has no top-level run tagged "
                                 f"{KIND_TAG} = sweep; pass the sweep's run id")
    return run_id


def _check_parent(client, run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.experiment_id
    except MlflowException as exc:
        raise AnalysisInputError(f"--parent-run: no MLflow run with id {run_id!r}") from exc


def _trial_row(run) -> dict:
    row: dict = dict(run.data.params)  # strings; tidy() turns numeric-looking ones into numbers
    row.update(run.data.metrics)  # the latest value of each metric
    row["status"] = run.data.tags.get(STATUS_TAG) or run.info.status
    row["run_id"] = run.info.run_id
    return row


def history_keys(columns: list[str]) -> list[str]:
    """Keys whose per-epoch values early warning reads: drift signals (mean, and the deepest layer of each
    attention Δ), train loss, validation accuracy and zero-shot retention."""
    last = last_layers(columns)
    found = []
    for column in columns:
        parsed = keys.parse(column)
        if parsed is None or parsed.best:
            continue
        deepest = parsed.layer is None or (parsed.kind == "attn_delta" and parsed.layer == last.get(parsed.metric))
        if (keys.drift_direction(column) is not None and deepest) or keys.is_retention(column) \
                or column in (keys.TRAIN_LOSS, keys.VAL_ACC):
            found.append(column)
    return found


def _histories(client, rows: list[dict]) -> None:
    """Adds `epoch<k>_<key>` values to each row (in place) from its run's metric history."""
    wanted = history_keys(sorted({k for r in rows for k in r}))
    jobs = [(r, key) for r in rows for key in wanted if key in r]

    def fetch(job: tuple[dict, str]) -> tuple[dict, str, list]:
        row, key = job
        return row, key, client.get_metric_history(row["run_id"], key)

    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        for row, key, history in pool.map(fetch, jobs):
            row.update({keys.at_epoch(key, m.step): m.value for m in history})


def _wise_points(client, rows: list[dict]) -> None:
    """Adds `alpha<k>_<key>` values (in place) from each WiSE-FT swept run's `wise/<key>` history, for the
    accuracies and the zero-shot keys (what the α-frontier is drawn in)."""
    jobs = [(r, name) for r in rows for name in r if (key := keys.unwise(name)) is not None
            and (key in (keys.TEST_ACC, keys.VAL_ACC) or (parsed := keys.parse(key)) is not None
                 and parsed.kind == "zeroshot")]

    def fetch(job: tuple[dict, str]) -> tuple[dict, str, list]:
        row, name = job
        return row, name, client.get_metric_history(row["run_id"], name)

    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        for row, name, history in pool.map(fetch, jobs):
            row.update({keys.at_alpha(keys.unwise(name), m.step): m.value for m in history})


def table_from_mlflow(tracking_uri: str, experiment: str, parent_run_id: str | None = None,
                      metrics: list[str] | None = None, history: bool = False) -> pd.DataFrame:
    """Tidy table of the trial runs under `parent_run_id` (default: the latest sweep run);
    with `history`, each run's per-epoch values too."""
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment, tracking_uri)
    if parent_run_id is None:
        parent_run_id = _sweep_run(client, experiment_id, experiment)
    else:
        _check_parent(client, parent_run_id)
    children = _search(client, experiment_id, f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
    rows = [_trial_row(r) for r in children if r.data.tags.get(KIND_TAG) == "trial"]
    if not rows:
        raise AnalysisInputError(f"--parent-run: run {parent_run_id} has no child runs tagged {KIND_TAG} = trial")
    if history:
        _histories(client, rows)
    _wise_points(client, rows)
    return tidy(pd.DataFrame(rows), metrics)


def log_to_mlflow(result: "AnalysisResult", tracking_uri: str, experiment: str,
                  parent_run_id: str | None = None) -> str:
    """Log result.out_dir as artifacts of a new run 'analysis' nested under the sweep; its id."""
    client = _client(tracking_uri)
    if parent_run_id is None:
        experiment_id = _experiment_id(client, experiment, tracking_uri)
        parent_run_id = _sweep_run(client, experiment_id, experiment)
    else:
        experiment_id = _check_parent(client, parent_run_id)  # nest where the parent lives
    run = client.create_run(experiment_id, run_name="analysis",
                            tags={PARENT_TAG: parent_run_id, KIND_TAG: "analysis"})
    run_id = run.info.run_id
    try:
        client.log_param(run_id, "families", ",".join(result.families))
        client.log_param(run_id, "alpha", result.alpha)
        client.log_metric(run_id, "analysis/n_tests", len(result.tests))
        client.log_metric(run_id, "analysis/n_significant", len(result.significant))
        client.log_metric(run_id, "analysis/n_excluded", sum(result.excluded.values()))
        client.log_artifacts(run_id, str(result.out_dir))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id

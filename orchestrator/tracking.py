"""MLflow tracking for sweeps: the local server, the parent run, and one child run per trial.

Locally driftlab runs a real MLflow server on 127.0.0.1 over sqlite, with artifacts served
from one directory under DRIFTLAB_HOME (default ~/.driftlab); `driftlab ui` serves the same
store. On a cluster the server runs on the head node and its URI reaches every worker
through the runtime env.

Trials log from inside the trainable (not Ray's MLflowLoggerCallback, which keys runs by an
in-memory Trial object and opens duplicate runs after `Tuner.restore`): a child run is found
by its `driftlab.trial_id` tag under the sweep's parent run, so a retried or resumed trial
reuses its run. Client calls are bounded (a few seconds, one retry) and a failing server
switches the trial to offline mode: Tune's own results remain the record, and
`driftlab sync` replays them into MLflow afterwards.

A trial's params and per-epoch metrics go through MLflow's async logging (`synchronous=False`):
the training loop only enqueues them. Each batch is waited for when the next one is logged (so a
failure surfaces one epoch late at most), and `flush()` waits for the last one before Tune is
handed a checkpoint and at the end of the trial: what a checkpoint marks as done is in MLflow,
or counted as unsynced.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

from trainables.keys import KIND_TAG, PARENT_TAG, STATUS_TAG, TRAIN_LOSS, TRIAL_TAG, VAL_ACC  # noqa: F401 - re-exported

# MLflow's defaults retry a dead server for minutes per call; a sweep must not hang on it.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # stdout belongs to driftlab's own output
}
STEP_MARKERS = (VAL_ACC, TRAIN_LOSS)  # every report has one of them: see logged_steps
LOG_BATCH = 1000  # MLflow's limit of metrics per log_batch call


class TrackingError(RuntimeError):
    """The tracking server cannot be used; the message is one line."""


class PortInUse(TrackingError):
    """The local server's port is taken: bad input (exit 2), not a failure."""


def driftlab_home() -> Path:
    return Path(os.environ.get("DRIFTLAB_HOME", "~/.driftlab")).expanduser().resolve()


def bound_client_retries() -> None:
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (connections of a stopped server in TIME_WAIT do not count,
    as for the server's own bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (TrackingError) when an http(s) tracking server does not answer /health."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            if resp.status == 200:
                return
    except OSError as err:
        reason = getattr(err, "reason", err)
        raise TrackingError(f"tracking-uri: {uri} is not reachable ({reason}); start the server or "
                            "omit --tracking-uri to use a local one") from None
    raise TrackingError(f"tracking-uri: {uri}/health did not answer OK")


class LocalServer:
    """A real `mlflow server` on 127.0.0.1 over sqlite + a local artifact store; a context manager."""

    def __init__(self, home: Path | None = None, port: int | None = None):
        self.home = (home or driftlab_home()) / "mlflow"
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self._stopped = False

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.home / 'mlflow.db'}",
                "--artifacts-destination", str(self.home / "artifacts"), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1"]

    def start(self, timeout: float = 180.0, meanwhile: Callable[[], None] | None = None) -> "LocalServer":
        """Start and wait for /health; a server that fails (or a signal meanwhile) leaves nothing running.
        `meanwhile` runs (in this thread) while the server boots, before the first health check."""
        from orchestrator import watchdog
        from orchestrator.lock import exclusive

        if not port_free(self.port):
            raise PortInUse(f"port: 127.0.0.1:{self.port} is already in use (another `driftlab ui` or server?); "
                            "pick another with --port")
        self.home.mkdir(parents=True, exist_ok=True)
        watchdog.start()  # a SIGKILLed driver must not leave this server behind
        # The server's background job runner is not needed and costs a core while it boots.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        try:
            # Two servers creating (migrating) one fresh sqlite store at once race; one at a time.
            with exclusive(self.home / ".store.lock"):
                with open(self.home / "server.log", "ab") as log:
                    self.process = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env,
                                                    start_new_session=True)
                watchdog.stop_last(self.process.pid)
                if meanwhile is not None:
                    meanwhile()
                self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise TrackingError(f"mlflow server exited with code {self.process.returncode}; "
                                    f"see {self.home / 'server.log'}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as resp:
                    # OK from the port is ours only while our process lives (not a stranger's server).
                    if resp.status == 200 and self.process.poll() is None:
                        return
            except OSError:
                time.sleep(0.5)
        raise TrackingError(f"mlflow server did not become healthy in {timeout:.0f}s; see {self.home / 'server.log'}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the whole process group the server leads (it runs uvicorn as a child), even if the leader
        already exited; SIGKILL whatever is left after `timeout`."""
        if self.process is None or self._stopped:
            return
        group = self.process.pid  # start_new_session: the server leads its own group
        _signal_group(group, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and (self.process.poll() is None or _signal_group(group, 0)):
            time.sleep(0.2)
        _signal_group(group, signal.SIGKILL)
        self.process.wait()
        self._stopped = True

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(group: int, sig: int) -> bool:
    """Signal a process group; False when it has no process left."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False


def run_state(status: str) -> str:
    """An outcome as an MLflow run status: completed / diverged / stopped / stopped_drift -> FINISHED,
    interrupted -> KILLED, else FAILED."""
    if status == "interrupted":
        return "KILLED"
    return "FINISHED" if status in ("completed", "diverged", "stopped", "stopped_drift") else "FAILED"


def numeric_metrics(metrics: dict) -> dict[str, float]:
    """The float-valued entries of a report (status strings and the like go to tags)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}


class TrialRun:
    """The MLflow child run of one trial, reused across retries and resumes; never raises on server failure."""

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str, trial_id: str, name: str, config: dict):
        bound_client_retries()
        from mlflow import MlflowClient

        self.client = MlflowClient(uri)
        self.experiment_id, self.parent_run_id = experiment_id, parent_run_id
        self.trial_id, self.name, self.config = trial_id, name, config
        self.run_id: str | None = None
        self.logged_steps: set[int] = set()
        self.error: str | None = None
        self.unsynced = 0
        self._pending = None  # RunOperations of the batch logged last, not yet waited for
        self._status_logged: str | None = None
        # Final metrics when MLflow already holds this trial as completed (Tune's state can lag behind
        # a driver that was killed right after a trial finished): the trial is then not rerun.
        self.completed_metrics: dict[str, float] | None = None

    def _call(self, fn, *args, **kwargs):
        if self.error is not None:
            self.unsynced += 1
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # any client/network failure: go offline, keep training
            self.error = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            self.unsynced += 1
            print(f"driftlab: MLflow logging for trial {self.trial_id} is offline ({self.error}); "
                  "Tune keeps the results, `driftlab sync` replays them", file=sys.stderr)
            return None

    def open(self, tags: dict[str, str] | None = None) -> None:
        self._call(self._open, tags or {})

    def _open(self, tags: dict[str, str]) -> None:
        found = find_trial_run(self.client, self.experiment_id, self.parent_run_id, self.trial_id)
        if found is None:
            self.run_id = create_trial_run(self.client, self.experiment_id, self.parent_run_id, self.trial_id,
                                           self.name, self.config, tags, log_params=False)
            self._pending = self.client.log_batch(self.run_id, params=trial_params(self.config), synchronous=False)
        elif found.data.tags.get(STATUS_TAG) == "completed" and found.info.status == "FINISHED":
            self.run_id = found.info.run_id
            self.completed_metrics = dict(found.data.metrics)
        else:
            self.run_id = found.info.run_id
            self.logged_steps = logged_steps(self.client, self.run_id)
            attempts = int(found.data.tags.get("driftlab.attempts", "1")) + 1
            self.client.update_run(self.run_id, status="RUNNING")
            for key, value in {**tags, "driftlab.attempts": str(attempts), STATUS_TAG: "running"}.items():
                self.client.set_tag(self.run_id, key, value)

    def log(self, metrics: dict) -> None:
        """One batched call per epoch: numeric metrics at step = epoch, status as a tag."""
        if self.run_id is None and self.error is None:
            return
        from mlflow.entities import Metric, RunTag

        now, step = int(time.time() * 1000), int(metrics.get("epoch", 0))
        # A retried or resumed trial reports again the epochs it redoes (epoch 0 at least): log each once.
        fresh = step not in self.logged_steps
        batch = [Metric(k, v, now, step) for k, v in numeric_metrics(metrics).items() if fresh and not math.isinf(v)]
        self.logged_steps.add(step)
        tags = [RunTag(STATUS_TAG, str(metrics["status"]))] if "status" in metrics else []
        self.flush()
        self._pending = self._call(self.client.log_batch, self.run_id, metrics=batch, tags=tags, synchronous=False)
        if tags:
            self._status_logged = tags[0].value

    def flush(self) -> None:
        """Wait for the batch logged last; a failed one turns the run offline and counts as unsynced."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._call(pending.wait)

    def log_steps(self, steps: list[tuple[int, dict]]) -> None:
        """Metrics on another axis than the epoch (WiSE-FT's α): see `log_steps`."""
        if self.run_id is not None and steps:
            self._call(log_steps, self.client, self.run_id, steps)

    def log_artifacts(self, directory: Path) -> None:
        if self.run_id is not None:
            self._call(self.client.log_artifacts, self.run_id, str(directory))

    def close(self, status: str) -> None:
        """Tag the outcome (unless the last batch did) and end the run (see `run_state`)."""
        if self.run_id is None:
            return
        self.flush()
        if status != self._status_logged:
            self._call(self.client.set_tag, self.run_id, STATUS_TAG, status)
        self._call(self.client.set_terminated, self.run_id, run_state(status))


def log_steps(client, run_id: str, steps: list[tuple[int, dict]]) -> None:
    """{key: value} at each (step, metrics), in batches MLflow accepts (a finished run takes them too)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, step) for step, metrics in steps
             for k, v in numeric_metrics(metrics).items() if not math.isinf(v)]
    for start in range(0, len(batch), LOG_BATCH):
        client.log_batch(run_id, metrics=batch[start:start + LOG_BATCH])


def param_values(config: dict) -> dict[str, str]:
    """A trial config as MLflow params (lists comma-separated)."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in config.items()}


def trial_params(config: dict) -> list:
    from mlflow.entities import Param

    return [Param(k, v) for k, v in param_values(config).items()]


def create_trial_run(client, experiment_id: str, parent_run_id: str, trial_id: str, name: str, config: dict,
                     tags: dict[str, str], log_params: bool = True) -> str:
    """A new child run with the trial's tags (and, with log_params, its full config as params); its run id."""
    run = client.create_run(experiment_id, run_name=name, tags={
        PARENT_TAG: parent_run_id, KIND_TAG: "trial", TRIAL_TAG: trial_id,
        "driftlab.config_hash": config_hash(config), STATUS_TAG: "running", "driftlab.attempts": "1", **tags})
    if log_params:
        client.log_batch(run.info.run_id, params=trial_params(config))
    return run.info.run_id


def logged_steps(client, run_id: str) -> set[int]:
    """Epochs a run already holds: every report has val/acc (epoch 0 and evaluations) or train/loss."""
    return {int(m.step) for key in STEP_MARKERS for m in client.get_metric_history(run_id, key)}


def find_trial_run(client, experiment_id: str, parent_run_id: str, trial_id: str):
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent_run_id}'",
        max_results=5)
    return runs[0] if runs else None


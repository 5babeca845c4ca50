"""`driftlab wise RUN_ID`: the WiSE-FT frontier of a finished trial, from its saved trained parts.

    driftlab wise 3f2a...c9 [--alphas 0,0.25,0.5,0.75,1] [--tracking-uri URI] [--out DIR] [--json]

The trial run's params rebuild its config; its `trained_parts.safetensors` (head, LoRA) and
`trained_tower.safetensors` (the tower weights ft / lpft trained) are the best-validation
model, so no trial is rerun. Each α's metrics go to the same run as `wise/<key>` at step
round(100·α), with the table and figure as artifacts (trainables/wise.py says how θ(α) is
built). Without `--tracking-uri` or MLFLOW_TRACKING_URI the local store under DRIFTLAB_HOME
is served on 127.0.0.1 for the duration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

from orchestrator.cli import parse_args
from orchestrator.tracking import LocalServer, TrackingError, bound_client_retries, check_reachable, log_steps
from trainables import keys
from trainables.errors import ConfigError
from trainables.wise_grid import DEFAULT_ALPHAS

RUN_ID_RE = re.compile(r"[0-9a-f]{32}")
FINISHED = ("completed", "stopped_drift")
COLUMNS = ("alpha", keys.VAL_ACC, keys.TEST_ACC, keys.attn_delta("entropy"), keys.cka(), keys.WEIGHT_DRIFT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftlab wise", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id of a finished trial")
    parser.add_argument("--alphas", default=",".join(f"{a:g}" for a in DEFAULT_ALPHAS),
                        help="comma-separated weights in [0, 1] (default: 0,0.1,...,1)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow server (default: the local store)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table and figure here")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list on stdout")
    return parser


def parse_alphas(text: str) -> list[float]:
    from trainables.config import _coerce
    from trainables.wise_grid import check

    alphas = _coerce("alphas", "list[float]", text)
    if not alphas:
        raise ConfigError("alphas: give at least one weight in [0, 1], e.g. 0,0.5,1")
    check("alphas", alphas)
    return alphas


def load_finished(client, run_id: str):
    """The run, checked to be a finished driftlab trial; ConfigError (exit 2) otherwise."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"run_id: no MLflow run {run_id} on this tracking server") from None
    status = run.data.tags.get(keys.STATUS_TAG)
    if run.data.tags.get(keys.KIND_TAG) != "trial" or status not in FINISHED:
        raise ConfigError(f"run_id: run {run_id} is not a finished driftlab trial (status {status!r}; "
                          f"needs {' or '.join(FINISHED)})")
    return run


def download_parts(client, run_id: str, into: Path) -> dict:
    """Every trained weight the run saved, by parameter name."""
    from safetensors.torch import load_file

    from trainables.trial import PARTS_FILE, TOWER_FILE

    names = {a.path for a in client.list_artifacts(run_id)}
    if PARTS_FILE not in names:
        raise ConfigError(f"run_id: run {run_id} has no {PARTS_FILE} artifact (its trial saved no trained parts)")
    weights = {}
    for name in (PARTS_FILE, TOWER_FILE):
        if name in names:
            weights.update(load_file(client.download_artifacts(run_id, name, str(into))))
    return weights


def sweep_run(client, run_id: str, alphas: list[float], out: Path | None) -> list[dict]:
    """Rebuild the trial, load its weights, sweep α, log metrics and artifacts to the run; the rows."""
    from trainables.config import TrialConfig
    from trainables.trial import Trial
    from trainables.wise import wise_metrics
    from trainables.wise_figure import write_wise

    run = load_finished(client, run_id)
    config = TrialConfig.from_dict({**run.data.params, "wise_alphas": ""})
    with tempfile.TemporaryDirectory(prefix="driftlab-wise-") as tmp:
        weights = download_parts(client, run_id, Path(tmp))
        print(f"driftlab wise: {config.method} on {config.dataset}, {len(alphas)} α - loading ...", file=sys.stderr)
        trial = Trial(config)
        trial.best.weights = weights
        rows = trial.wise(alphas)
        art = Path(tmp) / "wise"
        art.mkdir()
        write_wise(rows, art)
        client.log_artifacts(run_id, str(art))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            write_wise(rows, out)
    log_steps(client, run_id, wise_metrics(rows))
    return rows


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def print_rows(rows: list[dict], log) -> None:
    """The frontier as a table: α, accuracies, attention and representation drift, retention."""
    columns = COLUMNS + tuple(k for k in rows[0] if keys.is_retention(k, best=False))
    print("WiSE-FT, θ(α) = (1−α)θ₀ + αθ:", file=log)
    print("  ".join(f"{c:>14}" for c in columns), file=log)
    for row in rows:
        print("  ".join(f"{_fmt(row.get(c, '')):>14}" for c in columns), file=log)


def main(argv: list[str] | None = None) -> int:
    args, code = parse_args(build_parser(), argv)
    if args is None:
        return code
    try:
        alphas = parse_alphas(args.alphas)
        if not RUN_ID_RE.fullmatch(args.run_id):
            raise ConfigError(f"run_id: {args.run_id!r} is not an MLflow run id (32 hex digits)")
        bound_client_retries()
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        server = None
        if uri:
            check_reachable(uri)
        else:
            server = LocalServer()
            if not (server.home / "mlflow.db").exists():
                raise ConfigError(f"tracking-uri: no local tracking store at {server.home}; name a server")
        from mlflow import MlflowClient

        if server is None:
            rows = sweep_run(MlflowClient(uri), args.run_id, alphas, args.out)
        else:
            with server:
                rows = sweep_run(MlflowClient(server.uri), args.run_id, alphas, args.out)
    except (ConfigError, TrackingError) as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 2
    print_rows(rows, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

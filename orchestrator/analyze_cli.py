"""`driftlab analyze`: analysis/cli.py, plus the sweep's own spec and the local tracking store.

With `--experiment` the analysis starts from the `analysis:` section of the spec the sweep ran
with (its parent run's `spec` artifact, parsed by orchestrator/spec.py; `--spec` and flags
override it), logs its report to MLflow as an `analysis` run under the sweep's parent run
(`--no-log-mlflow` skips it) and prints the experiment's page. Without `--tracking-uri` or
MLFLOW_TRACKING_URI the local store under DRIFTLAB_HOME is served on 127.0.0.1 for the duration.
"""

from __future__ import annotations

import argparse
import os
import sys

from analysis.cli import PROG, build_parser, exit_code, run
from analysis.options import AnalysisInputError, AnalysisOptions
from orchestrator.tracking import LocalServer, bound_client_retries
from orchestrator.ui_cli import where_to_browse


def parser() -> argparse.ArgumentParser:
    p = build_parser()
    p.add_argument("--no-log-mlflow", action="store_true",
                   help="with --experiment: do not log the report as a run under the sweep (logged by default)")
    return p


def sweep_analysis(tracking_uri: str, run_id: str) -> AnalysisOptions | None:
    """The parsed `analysis:` section of the spec a sweep's parent run holds; None without one."""
    import tempfile
    from pathlib import Path

    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    from orchestrator.parent import SPEC_DIR
    from orchestrator.spec import SpecError, load_spec

    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = Path(download_artifacts(run_id=run_id, artifact_path=SPEC_DIR, dst_path=tmp,
                                             tracking_uri=tracking_uri))
        except (MlflowException, OSError):  # a sweep started without a spec file: the analysis defaults
            return None
        specs = sorted(folder.iterdir())
        if not specs:
            return None
        try:
            return load_spec(str(specs[0])).analysis
        except SpecError as err:
            print(f"{PROG}: the sweep's spec does not validate here ({err}); analysis defaults apply",
                  file=sys.stderr)
            return None


def _with_sweep(args: argparse.Namespace, local_store: bool) -> None:
    """Run the analysis with the sweep's spec as defaults; point at the experiment's page in the UI."""
    from mlflow import MlflowClient

    from orchestrator.parent import find_parent

    try:
        experiment_id, parent = find_parent(MlflowClient(args.tracking_uri), args.experiment)
    except LookupError:  # no such sweep: the analysis says so, naming the flag
        experiment_id = parent = None
    parent = args.parent_run or parent
    run(args, None if args.spec or parent is None else sweep_analysis(args.tracking_uri, parent))
    if experiment_id is not None:
        print(f"{PROG}: browse the sweep and its analysis at "
              f"{where_to_browse(args.tracking_uri, experiment_id, local_store)}", file=sys.stderr)


def _analyze(args: argparse.Namespace) -> None:
    if not args.experiment:
        return run(args)
    bound_client_retries()
    args.log_mlflow = args.log_mlflow or not args.no_log_mlflow
    args.tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if args.tracking_uri:
        return _with_sweep(args, local_store=False)
    server = LocalServer()
    if not (server.home / "mlflow.db").exists():
        raise AnalysisInputError(f"--tracking-uri: no local tracking store at {server.home}; run a sweep first "
                                 "or name a server")
    with server:
        args.tracking_uri = server.uri
        _with_sweep(args, local_store=True)


def main(argv: list[str] | None = None) -> int:
    return exit_code(lambda: _analyze(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

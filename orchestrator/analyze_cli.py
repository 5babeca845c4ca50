"""`driftlab analyze`: analysis/cli.py, plus the local tracking store when no server is named.

With `--experiment` and neither `--tracking-uri` nor MLFLOW_TRACKING_URI, the local store under
DRIFTLAB_HOME is served on 127.0.0.1 for the duration (as `driftlab run` does), and the report
is logged to MLflow as an `analysis` run under the sweep's parent run (`--no-log-mlflow` skips it).
"""

from __future__ import annotations

import os
import sys

from analysis.cli import main as analyze_main
from orchestrator.tracking import LocalServer, TrackingError, bound_client_retries


def _value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def _with_sweep_spec(argv: list[str], uri: str) -> int:
    """Run the analysis with the sweep's own spec (its `analysis:` section) unless --spec is given."""
    import tempfile

    if "--spec" in argv:
        return analyze_main(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from mlflow import MlflowClient
            from mlflow.artifacts import download_artifacts

            from orchestrator.parent import find_parent

            parent = _value(argv, "--parent-run") or find_parent(MlflowClient(uri), _value(argv, "--experiment"))[1]
            spec_dir = download_artifacts(run_id=parent, artifact_path="spec", dst_path=tmp, tracking_uri=uri)
            specs = sorted(os.listdir(spec_dir))
            if specs:
                argv = [*argv, "--spec", os.path.join(spec_dir, specs[0])]
        except Exception:  # no parent or no spec artifact: the analysis defaults apply
            pass
        return analyze_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--experiment" not in argv:
        return analyze_main(argv)
    bound_client_retries()
    if "--no-log-mlflow" in argv:
        argv.remove("--no-log-mlflow")
    elif "--log-mlflow" not in argv:
        argv.append("--log-mlflow")
    uri = _value(argv, "--tracking-uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return _with_sweep_spec(argv, uri)
    server = LocalServer()
    if not (server.home / "mlflow.db").exists():
        print(f"driftlab analyze: --tracking-uri: no local tracking store at {server.home}; run a sweep first "
              "or name a server", file=sys.stderr)
        return 2
    try:
        server.start()
    except TrackingError as err:
        print(f"driftlab analyze: {err}", file=sys.stderr)
        return 1
    try:
        return _with_sweep_spec([*argv, "--tracking-uri", server.uri], server.uri)
    finally:
        server.stop()

"""`driftlab analyze`: analysis/cli.py, plus the local tracking store when no server is named.

With `--experiment` and neither `--tracking-uri` nor MLFLOW_TRACKING_URI, the local store under
DRIFTLAB_HOME is served on 127.0.0.1 for the duration (as `driftlab run` does), and the report
is logged to MLflow as an `analysis` run under the sweep's parent run (`--no-log-mlflow` skips it).
"""

from __future__ import annotations

import os
import sys

from analysis.cli import main as analyze_main
from orchestrator.tracking import LocalServer, TrackingError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--experiment" not in argv:
        return analyze_main(argv)
    if "--no-log-mlflow" in argv:
        argv.remove("--no-log-mlflow")
    elif "--log-mlflow" not in argv:
        argv.append("--log-mlflow")
    if "--tracking-uri" in argv or os.environ.get("MLFLOW_TRACKING_URI"):
        return analyze_main(argv)
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
        return analyze_main([*argv, "--tracking-uri", server.uri])
    finally:
        server.stop()

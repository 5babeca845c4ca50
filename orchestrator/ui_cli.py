"""`driftlab ui [--port P]`: browse the local tracking store (DRIFTLAB_HOME/mlflow) on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli import parse_args
from orchestrator.tracking import LocalServer, TrackingError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftlab ui", description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    args, code = parse_args(parser, argv)
    if args is None:
        return code
    server = LocalServer(port=args.port)
    if not (server.home / "mlflow.db").exists():
        print(f"driftlab: no local tracking store at {server.home} yet; run `driftlab run` first", file=sys.stderr)
        return 2
    try:
        server.start()
        print(f"MLflow UI: {server.uri}  (Ctrl-C to stop)", flush=True)
        server.process.wait()
    except TrackingError as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0

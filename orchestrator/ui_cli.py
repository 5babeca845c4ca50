"""`driftlab ui [--port P]`: browse the local tracking store (DRIFTLAB_HOME/mlflow) on 127.0.0.1.

Ctrl-C, SIGTERM or SIGHUP stop the server with it; a SIGKILL too (the watchdog stops it).
A port already in use is one line and exit 2, not a URL for somebody else's server.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator import signals
from orchestrator.cli import parse_args
from orchestrator.tracking import LocalServer, PortInUse, TrackingError
from trainables.keys import experiment_url

UI_PORT = 5000


def where_to_browse(tracking_uri: str, experiment_id: str, local_store: bool) -> str:
    """The experiment's page; for the local store (whose server stops with the command that started it),
    where `driftlab ui` will serve it."""
    if local_store:
        return f"`driftlab ui`, then {experiment_url(f'http://127.0.0.1:{UI_PORT}', experiment_id)}"
    return experiment_url(tracking_uri, experiment_id)


def print_experiments(uri: str) -> None:
    """One line per experiment: its name and the link that opens its runs table."""
    from mlflow import MlflowClient

    for experiment in MlflowClient(uri).search_experiments(max_results=100):
        if experiment.name != "Default":
            print(f"  {experiment.name}: {experiment_url(uri, experiment.experiment_id)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftlab ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=UI_PORT)
    args, code = parse_args(parser, argv)
    if args is None:
        return code
    if not 1 <= args.port <= 65535:
        print(f"driftlab: port: {args.port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    server = LocalServer(port=args.port)
    if not (server.home / "mlflow.db").exists():
        print(f"driftlab: no local tracking store at {server.home} yet; run `driftlab run` first", file=sys.stderr)
        return 2
    with signals.handling():
        return _serve(server)


def _serve(server: LocalServer) -> int:
    try:
        server.start()
        print(f"MLflow UI: {server.uri}  (Ctrl-C to stop)", flush=True)
        print_experiments(server.uri)
        server.process.wait()
        if not signals.received:
            print(f"driftlab: the MLflow server stopped (code {server.process.returncode}); "
                  f"see {server.home / 'server.log'}", file=sys.stderr)
            return 1
    except PortInUse as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 2
    except TrackingError as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        signals.shield()
        server.stop()
    return 0

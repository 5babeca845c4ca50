"""`driftlab sync NAME [--tracking-uri URI] [--storage PATH]`: replay a sweep's Tune results into MLflow.

For sweeps whose tracking server went away mid-run: per-epoch metrics that never reached
MLflow are logged from Tune's own record; steps already present are skipped.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli import parse_args
from orchestrator.tracking import LocalServer, TrackingError, bound_client_retries, check_reachable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftlab sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--storage", default=None)
    args, code = parse_args(parser, argv)
    if args is None:
        return code
    from ray import tune

    from orchestrator.parent import find_parent
    from orchestrator.reconcile import sync
    from orchestrator.storage import experiment_path, storage_root
    from orchestrator.trainable import SweepContext, run_driftlab_trial

    storage = storage_root(args.storage)
    path = experiment_path(storage, args.name)
    if not tune.Tuner.can_restore(path):
        print(f"driftlab: name: no sweep {args.name!r} under {storage}", file=sys.stderr)
        return 2
    bound_client_retries()
    server = None
    try:
        uri = args.tracking_uri
        if uri:
            check_reachable(uri)
        else:
            server = LocalServer().start()
            uri = server.uri
        from mlflow import MlflowClient
        experiment_id, parent = find_parent(MlflowClient(uri), args.name)
        results = tune.Tuner.restore(path, trainable=run_driftlab_trial).get_results()
        written = sync(SweepContext(uri, experiment_id, parent), results)
        print(f"driftlab: synced {len(results)} trials of {args.name!r}: {written} metric values written")
        return 0
    except TrackingError as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()

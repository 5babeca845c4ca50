"""`driftlab sync NAME [--tracking-uri URI] [--storage PATH]`: replay a sweep's Tune record into MLflow.

For sweeps whose tracking server went away mid-run: runs, params, per-epoch metrics, final
artifacts and run states that never reached MLflow are written from Tune's record (see
orchestrator/sync.py); what is already there is skipped. A sweep still running is refused.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator import signals
from orchestrator.cli import parse_args
from orchestrator.lock import SweepLock, SweepLocked
from orchestrator.storage import experiment_path, storage_root
from orchestrator.tracking import LocalServer, TrackingError, bound_client_retries, check_reachable


def _fail(message: str, code: int = 2) -> int:
    print(f"driftlab: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftlab sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--storage", default=None)
    args, code = parse_args(parser, argv)
    if args is None:
        return code
    from ray import tune

    storage = storage_root(args.storage)
    path = experiment_path(storage, args.name)
    if not tune.Tuner.can_restore(path):
        return _fail(f"name: no sweep {args.name!r} under {storage}")
    try:
        lock = SweepLock(storage, args.name).acquire()
    except SweepLocked as err:
        return _fail(str(err))
    bound_client_retries()
    with signals.handling():
        try:
            return _serve_and_sync(args, storage, path)
        finally:
            lock.release()


def _serve_and_sync(args, storage: str, path: str) -> int:
    server = None
    try:
        uri = args.tracking_uri
        if uri:
            check_reachable(uri)
        else:
            server = LocalServer()
            server.start()
            uri = server.uri
        return _sync(args.name, storage, path, uri)
    except TrackingError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return _fail(f"interrupted ({signals.name()}); run `driftlab sync {args.name}` again to finish",
                     signals.exit_code() or 130)
    finally:
        signals.shield()
        if server is not None:
            server.stop()


def _sync(name: str, storage: str, path: str, uri: str) -> int:
    from mlflow import MlflowClient
    from ray import tune

    from orchestrator.parent import close_parent, find_parent, spec_copy, summary
    from orchestrator.reconcile import sweep_status
    from orchestrator.sync import replay_spec, sync
    from orchestrator.trainable import SweepContext, run_driftlab_trial

    client = MlflowClient(uri)
    try:
        experiment_id, parent = find_parent(client, name)
    except LookupError:
        return _fail(f"name: MLflow at {uri} has no parent run of sweep {name!r} (was it tracked by another "
                     "server? pass that one with --tracking-uri)")
    results = tune.Tuner.restore(path, trainable=run_driftlab_trial).get_results()
    done = sync(client, SweepContext(uri, experiment_id, parent), results)
    done.artifact_files += replay_spec(client, parent, spec_copy(storage, name))
    state = "unchanged"
    if client.get_run(parent).info.status == "RUNNING":
        state = sweep_status(done.counts, signalled=False) if not done.counts.get("interrupted") else "interrupted"
        close_parent(client, parent, state, summary(len(results), done.counts))
    print(f"driftlab: synced {len(results)} trials of {name!r}: {done.runs_created} runs created, "
          f"{done.params} params, {done.metric_values} metric values written, {done.artifact_files} artifact "
          f"files uploaded; parent run {state}")
    return 0

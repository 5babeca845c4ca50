"""`driftlab run [SPEC]`: a sweep on Ray Tune, tracked in MLflow.

    driftlab run                                   the embedded demo, local Ray, local MLflow server
    driftlab run matched_lr --address auto         a ready spec on a running cluster
    driftlab run my.yaml --tracking-uri http://head:5000 --storage s3://bucket/driftlab

No --address: a local Ray on this machine (its CPUs and GPUs), listening on 127.0.0.1 only.
No --tracking-uri: a real MLflow server on 127.0.0.1 for the duration of the run (store under
DRIFTLAB_HOME). The same sweep name again resumes an interrupted sweep; completed trials are
not rerun. Every input is checked before anything starts; one live driver per sweep name.
Exit codes: 0 completed, 1 failed, 2 bad input, 128 + signal when interrupted (130 Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from orchestrator import signals, watchdog
from orchestrator.cli import parse_args
from orchestrator.lock import SweepLock, SweepLocked
from orchestrator.preflight import PreflightError, check_local_resources, check_storage, check_tracking_uri
from orchestrator.spec import NAME_RE, SpecError, load_spec
from orchestrator.storage import storage_root
from orchestrator.tracking import CLIENT_ENV, LocalServer, TrackingError, bound_client_retries, check_reachable
from trainables.config import calibrated_note

PASS_ENV = ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "DRIFTLAB_HOME")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftlab run", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default=None, help="spec file or ready spec name (default: demo)")
    parser.add_argument("--address", default=None, help="Ray cluster to join (auto, ray://host:10001, host:port)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow server (default: a local one on 127.0.0.1)")
    parser.add_argument("--name", default=None, help="sweep name (default: the spec's); same name = resume")
    parser.add_argument("--storage", default=None,
                        help="Tune storage path; shared (s3://, gs://, NFS) on multi-node clusters "
                             "(default: $DRIFTLAB_STORAGE or DRIFTLAB_HOME/runs)")
    parser.add_argument("--smoke", action="store_true", help="tiny version of the sweep (1-2 short epochs)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    return parser


def _fail(message: str) -> int:
    print(f"driftlab: {message}", file=sys.stderr)
    return 2


def init_ray(address: str | None, tracking_uri: str, num_cpus: int | None) -> None:
    import ray

    # Checkpoints every epoch of short trials make Tune warn about snapshot frequency; expected here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    env = {**CLIENT_ENV, "MLFLOW_TRACKING_URI": tracking_uri, "TOKENIZERS_PARALLELISM": "false",
           **{k: os.environ[k] for k in PASS_ENV if k in os.environ}}
    if "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ:
        # Inside `ray job submit`: the job's env vars already reach every worker, and Ray refuses to
        # merge a driver runtime env that names the same keys again.
        env = {k: v for k, v in env.items() if k not in os.environ}
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False, logging_level="WARNING")
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, runtime_env={"env_vars": env},
                 log_to_driver=False, logging_level="WARNING")


def bind_local_ray_to_loopback() -> None:
    """Make a local Ray listen on 127.0.0.1 only (GCS, raylet, workers, agents, dashboard, monitor).

    `ray.init(_node_ip_address="127.0.0.1")` is turned back into the routable address by Ray
    (`resolve_ip_for_localhost`); Ray keeps loopback only where it treats the machine as a
    single-node, non-cluster host, which this switch selects (Ray's default on macOS and Windows).
    It must be set before `import ray`: Ray reads it into a constant at import.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # imported already (in-process callers): the constant is read per call
        constants.ENABLE_RAY_CLUSTER = False


def preflight(args) -> tuple:
    """(spec, storage) after every check that needs nothing started; SpecError / PreflightError / TrackingError."""
    spec = load_spec(args.spec)
    if args.name is not None:
        if not NAME_RE.match(args.name):
            raise SpecError("name: must be 1-64 letters, digits, _ . -")
        spec.name = args.name
    if args.smoke:
        from orchestrator.sweep import smoke
        spec = smoke(spec)
    if args.num_cpus is not None and args.num_cpus < 1:
        raise SpecError("num-cpus: must be an integer >= 1")
    if args.tracking_uri:
        check_tracking_uri(args.tracking_uri)
        check_reachable(args.tracking_uri)
    if not args.address:
        check_local_resources(spec, args.num_cpus)
    storage = storage_root(args.storage)
    check_storage(storage, spec.name)
    return spec, storage


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, code = parse_args(build_parser(), argv)
    if args is None:
        return code
    bound_client_retries()
    try:
        spec, storage = preflight(args)
        lock = SweepLock(storage, spec.name).acquire()
    except (SpecError, PreflightError, TrackingError, SweepLocked) as err:
        return _fail(str(err))
    note = calibrated_note(spec.points())
    if note:
        print(f"driftlab: {note}", file=sys.stderr)
    watchdog.start()  # even a SIGKILL of this process must not leave the server or Ray behind
    if not args.address:
        bind_local_ray_to_loopback()
    try:
        with signals.handling():
            return _launch(args, spec, storage, again=shlex.join(["driftlab", "run", *argv]))
    finally:
        lock.release()


def _launch(args, spec, storage: str, again: str) -> int:
    """Start the local MLflow server (unless a URI is given) and Ray, run the session, stop both."""
    server = None
    try:
        uri = args.tracking_uri
        if uri is None:
            print("driftlab: starting a local MLflow server on 127.0.0.1 ...", file=sys.stderr, flush=True)
            server = LocalServer()
            # Not overlapped with Ray's start (which would save a few seconds): a signal landing inside
            # ray.init meets Ray's own SIGTERM handler or a half-started Ray; one boot at a time keeps
            # every signal on the path that stops both cleanly. Imports are not a start: they overlap.
            server.start(meanwhile=_import_driver_modules)
            uri = server.uri
        init_ray(args.address, uri, args.num_cpus)
        signals.install()  # again: ray.init installs a native SIGTERM handler (stack dump, exit 134)
        from orchestrator.session import run_session
        return run_session(spec, storage, uri, local_store=server is not None, again=again)
    except TrackingError as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"driftlab: interrupted by {signals.name() or 'SIGINT'} before the sweep started; nothing ran",
              file=sys.stderr)
        return signals.exit_code() or 130
    finally:
        signals.shield()
        try:
            _stop_ray()
        finally:
            if server is not None:
                server.stop()


def _import_driver_modules() -> None:
    """What the driver needs once the server answers (the MLflow client, Ray, Tune, the session), imported
    while the server boots on another core rather than after (about 1.5 s of a local start-up, measured)."""
    import mlflow  # noqa: F401
    import ray.tune  # noqa: F401 - after bind_local_ray_to_loopback, which main() calls first

    import orchestrator.session  # noqa: F401


def _stop_ray() -> None:
    """Shut down the Ray this driver started. A signal can land inside `import ray` itself, leaving a
    half-imported module and no Ray to stop."""
    ray = sys.modules.get("ray")
    is_initialized = getattr(ray, "is_initialized", None)
    if is_initialized is not None and is_initialized():
        ray.shutdown()

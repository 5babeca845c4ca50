"""`driftlab run [SPEC]`: a sweep on Ray Tune, tracked in MLflow.

    driftlab run                                   the embedded demo, local Ray, local MLflow server
    driftlab run matched_lr --address auto         a ready spec on a running cluster
    driftlab run my.yaml --tracking-uri http://head:5000 --storage s3://bucket/driftlab

No --address: a local Ray on this machine (its CPUs and GPUs). No --tracking-uri: a real
MLflow server on 127.0.0.1 for the duration of the run (store under DRIFTLAB_HOME). The same
sweep name again resumes an interrupted sweep; completed trials are not rerun.
"""

from __future__ import annotations

import argparse
import os
import sys

from orchestrator.cli import parse_args
from orchestrator.spec import NAME_RE, SpecError, load_spec
from orchestrator.tracking import CLIENT_ENV, LocalServer, TrackingError, bound_client_retries, check_reachable

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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, code = parse_args(parser, argv)
    if args is None:
        return code
    try:
        spec = load_spec(args.spec)
    except SpecError as err:
        return _fail(str(err))
    if args.name is not None:
        if not NAME_RE.match(args.name):
            return _fail("name: must be 1-64 letters, digits, _ . -")
        spec.name = args.name
    if args.smoke:
        from orchestrator.sweep import smoke
        spec = smoke(spec)
    if args.num_cpus is not None and args.num_cpus < 1:
        return _fail("num-cpus: must be an integer >= 1")
    bound_client_retries()
    if args.tracking_uri:
        try:
            check_reachable(args.tracking_uri)
        except TrackingError as err:
            return _fail(str(err))
    from orchestrator.session import run_session
    from orchestrator.storage import storage_root

    storage = storage_root(args.storage)

    server = None
    try:
        uri = args.tracking_uri
        if uri is None:
            print("driftlab: starting a local MLflow server on 127.0.0.1 ...", file=sys.stderr, flush=True)
            server = LocalServer().start()
            uri = server.uri
        init_ray(args.address, uri, args.num_cpus)
        return run_session(spec, storage, uri, local_store=server is not None)
    except TrackingError as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 1
    finally:
        try:
            import ray
            if ray.is_initialized():
                ray.shutdown()
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    sys.exit(main())

"""`driftlab validate FILE... [--address A]`: check sweep specs and `ray up` cluster files, running nothing.

A cluster file (it has `provider:`) is validated with Ray's own autoscaler schema, the code
path `ray up` takes, and on AWS must restrict SSH with its own security groups; anything else
is read as a sweep spec and checked as `driftlab run` checks it (without --address: against
this machine's CPUs and GPUs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli import parse_args
from orchestrator.preflight import PreflightError, check_local_resources
from orchestrator.spec import SpecError, load_spec
from orchestrator.strict_yaml import YamlError, parse_yaml, read_text
from trainables.config import calibrated_note


def check_ssh_ingress(config: dict) -> str:
    """On AWS every node type must name its own security group: Ray's default opens SSH to 0.0.0.0/0."""
    if config.get("provider", {}).get("type") != "aws":
        return ""
    groups = set()
    for name, node_type in config.get("available_node_types", {}).items():
        ids = node_type.get("node_config", {}).get("SecurityGroupIds")
        if not ids:
            raise SpecError(f"cluster.available_node_types.{name}.node_config.SecurityGroupIds: required on AWS; "
                            "Ray's default security group opens SSH to 0.0.0.0/0 (see cluster.yaml's header)")
        groups.update(ids)
    return f"; SSH ingress: security group {', '.join(sorted(groups))}"


def validate_cluster(path: Path) -> str:
    """Return a one-line summary, or raise SpecError naming what Ray's schema rejects."""
    import logging

    from ray.autoscaler._private.util import prepare_config, validate_config

    logging.getLogger("ray.autoscaler").setLevel(logging.WARNING)  # its INFO lines are not ours to print

    try:
        raw = parse_yaml(read_text(path))
    except YamlError as err:
        raise SpecError(f"cluster: {path} {err}") from None
    try:
        config = prepare_config(raw)
        validate_config(config)
    except Exception as err:  # jsonschema.ValidationError, ValueError, AssertionError from Ray
        message = getattr(err, "message", None) or str(err)
        where = "/".join(map(str, getattr(err, "absolute_path", []) or []))
        raise SpecError(f"cluster{'.' + where.replace('/', '.') if where else ''}: {message.splitlines()[0]}") from None
    workers = ", ".join(f"{name} ({spec.get('min_workers', 0)}-{spec.get('max_workers', '?')})"
                        for name, spec in config.get("available_node_types", {}).items())
    ssh = check_ssh_ingress(config)
    return f"{path}: valid Ray cluster config {config.get('cluster_name')!r}; node types: {workers}{ssh}"


def validate_file(name: str, address: str | None) -> str:
    path = Path(name)
    if path.exists() and path.suffix in (".yaml", ".yml"):
        try:
            raw = parse_yaml(read_text(path))
        except (YamlError, OSError):
            raw = None
        if isinstance(raw, dict) and "provider" in raw:
            return validate_cluster(path)
    spec = load_spec(name)
    if address is None:  # checked as `driftlab run` would on this machine, without --address
        check_local_resources(spec, None)
    count = f"{spec.search.num_samples} Optuna samples" if spec.search else f"{len(spec.configs())} trials"
    note = calibrated_note(spec.points())
    return f"{spec.source}: valid sweep {spec.name!r}: {count}" + (f"\n  {note}" if note else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftlab validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="sweep specs, ready spec names, or cluster.yaml")
    parser.add_argument("--address", default=None,
                        help="the cluster the sweep will run on (skips the check against this machine's CPUs/GPUs)")
    args, code = parse_args(parser, sys.argv[1:] if argv is None else argv)
    if args is None:
        return code
    for name in args.files:
        try:
            print(validate_file(name, args.address))
        except (SpecError, PreflightError) as err:
            print(f"driftlab: {err}", file=sys.stderr)
            return 2
    return 0

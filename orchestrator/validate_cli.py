"""`driftlab validate FILE...`: check sweep specs and `ray up` cluster files without running anything.

A cluster file (it has `provider:`) is validated with Ray's own autoscaler schema, the code
path `ray up` takes; anything else is read as a sweep spec.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from orchestrator.spec import SpecError, load_spec


def validate_cluster(path: Path) -> str:
    """Return a one-line summary, or raise SpecError naming what Ray's schema rejects."""
    import logging

    from ray.autoscaler._private.util import prepare_config, validate_config

    logging.getLogger("ray.autoscaler").setLevel(logging.WARNING)  # its INFO lines are not ours to print

    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"cluster: {path} is not valid YAML: {getattr(err, 'problem', err)}") from None
    try:
        config = prepare_config(raw)
        validate_config(config)
    except Exception as err:  # jsonschema.ValidationError, ValueError, AssertionError from Ray
        message = getattr(err, "message", None) or str(err)
        where = "/".join(map(str, getattr(err, "absolute_path", []) or []))
        raise SpecError(f"cluster{'.' + where.replace('/', '.') if where else ''}: {message.splitlines()[0]}") from None
    workers = ", ".join(f"{name} ({spec.get('min_workers', 0)}-{spec.get('max_workers', '?')})"
                        for name, spec in config.get("available_node_types", {}).items())
    return f"{path}: valid Ray cluster config {config.get('cluster_name')!r}; node types: {workers}"


def validate_file(name: str) -> str:
    path = Path(name)
    if path.exists() and path.suffix in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            raw = None
        if isinstance(raw, dict) and "provider" in raw:
            return validate_cluster(path)
    spec = load_spec(name)
    count = f"{spec.search.num_samples} Optuna samples" if spec.search else f"{len(spec.configs())} trials"
    return f"{spec.source}: valid sweep {spec.name!r}: {count}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: driftlab validate FILE [FILE ...]   (sweep specs, ready spec names, or cluster.yaml)")
        return 0 if argv else 2
    for name in argv:
        try:
            print(validate_file(name))
        except SpecError as err:
            print(f"driftlab: {err}", file=sys.stderr)
            return 2
    return 0

"""Sweep specs: YAML -> a strict dataclass -> the trial configs it stands for.

A spec names fixed trial settings (`trial:`), a cartesian `grid:` over any trial keys,
optional `variants:` crossed with the grid (e.g. `{method: ft, gta_lambda: 0.5}` beside
plain methods), or an Optuna `search:`; plus `scheduler`, `resources`, `max_concurrent`,
`max_failures` and an `analysis:` section. Everything is checked before Ray starts: every
expanded trial config is validated by the trial's own dataclass, and a search objective must
be a metric the trial reports. Wherever a spec names a metric (objectives, scheduler, analysis)
a short form is accepted (`retention`: the first zero-shot task's retention; `zeroshot_acc`)
and resolved to its key here. Errors are `SpecError`: one line naming the field.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.options import SPEC_KEYS, AnalysisOptions, options_from_spec
from orchestrator.strict_yaml import YamlError, parse_yaml, read_text
from trainables.config import ConfigError, TrialConfig
from trainables.keys import resolve, task_segment

SWEEPS_DIR = Path(__file__).parent / "sweeps"
TOP_KEYS = ("name", "description", "trial", "grid", "variants", "search", "scheduler", "resources",
            "max_concurrent", "max_failures", "analysis")
SEARCH_KEYS = ("space", "num_samples", "objectives", "seed")
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
SCHEDULER_KEYS = ("type", "metric", "mode", "grace_period", "reduction_factor")
RESOURCE_KEYS = ("cpu", "gpu")
MODES = ("max", "min")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Past this many trials a sweep is almost surely a typo (a grid of 10^9 points), and expanding and
# validating it would hang before launch; split a real sweep of this size into several specs.
MAX_TRIALS = 10_000


class SpecError(ValueError):
    """Bad spec: one line naming the field and what is accepted."""


@dataclass
class Search:
    space: dict[str, dict[str, Any]]
    num_samples: int
    objectives: dict[str, str]  # metric -> max | min
    seed: int = 0


@dataclass
class Spec:
    name: str
    description: str = ""
    trial: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)
    search: Search | None = None
    scheduler: dict[str, Any] | None = None
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    max_concurrent: int = 0  # 0 = as many as resources allow
    max_failures: int = 2
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    source: str = ""

    def configs(self) -> list[dict[str, Any]]:
        """Every trial config of a grid sweep (fixed settings, grid point, variant), in order."""
        keys = list(self.grid)
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            for variant in self.variants or [{}]:
                out.append({**self.trial, **dict(zip(keys, values)), **variant})
        return out

    def points(self) -> list[dict[str, Any]]:
        """What validation checks: every grid config, or the corners of a search space (low/high, each choice)."""
        return _sample_points(self.search, self.trial) if self.search else self.configs()

    def trial_configs(self) -> list[TrialConfig]:
        """`points()` as validated trial configs (defaults applied)."""
        return [TrialConfig.from_dict(point) for point in self.points()]


def _need(ok: bool, field_name: str, accepted: str) -> None:
    if not ok:
        raise SpecError(f"{field_name}: {accepted}")


def _keys(section: Any, field_name: str, accepted: tuple[str, ...]) -> dict:
    _need(isinstance(section, dict), field_name, "must be a mapping")
    for key in section:
        _need(key in accepted, f"{field_name}.{key}" if field_name else str(key),
              f"unknown key; accepted: {', '.join(accepted)}")
    return section


def _number(value: Any) -> bool:
    """A finite int or float (YAML's .inf / .nan and booleans are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _trial_keys(section: dict, field_name: str) -> None:
    names = set(TrialConfig.__dataclass_fields__)
    for key in section:
        _need(key in names, f"{field_name}.{key}", "not a trial config key; see `driftlab trial --help`")


def _check_config(values: dict, where: str) -> TrialConfig:
    try:
        return TrialConfig.from_dict(values)
    except ConfigError as err:
        raise SpecError(f"{where}: {err}") from None


def _search(raw: Any) -> Search:
    raw = _keys(raw, "search", SEARCH_KEYS)
    for key in ("space", "num_samples", "objectives"):
        _need(key in raw, f"search.{key}", "required")
    space = _keys(raw["space"], "search.space", tuple(TrialConfig.__dataclass_fields__))
    _need(bool(space), "search.space", "must name at least one trial key")
    for key, dist in space.items():
        where = f"search.space.{key}"
        _need(isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in DISTRIBUTIONS, where,
              f"must be one of {{loguniform: [lo, hi]}}, {{uniform: [lo, hi]}}, {{int: [lo, hi]}}, {{choice: [...]}}")
        kind, args = next(iter(dist.items()))
        _need(isinstance(args, list) and len(args) >= (1 if kind == "choice" else 2), where,
              f"{kind} needs {'a non-empty list' if kind == 'choice' else '[low, high]'}")
        if kind != "choice":
            _need(len(args) == 2 and all(_number(a) for a in args) and args[0] < args[1], where,
                  f"{kind} needs finite numbers [low, high] with low < high")
            _need(kind != "loguniform" or args[0] > 0, where, "loguniform needs low > 0")
    objectives = raw["objectives"]
    _need(isinstance(objectives, dict) and objectives, "search.objectives",
          "must map metric names to max or min, e.g. {val/acc: max}")
    for metric, mode in objectives.items():
        _need(mode in MODES, f"search.objectives.{metric}", "must be max or min")
    num = raw["num_samples"]
    _need(_integer(num) and 1 <= num <= MAX_TRIALS, "search.num_samples", f"must be an integer in [1, {MAX_TRIALS}]")
    seed = raw.get("seed", 0)
    _need(_integer(seed) and seed >= 0, "search.seed", f"must be an integer >= 0, got {seed!r}")
    return Search(space=space, num_samples=num, objectives=dict(objectives), seed=seed)


def _sample_points(search: Search, trial: dict) -> list[dict]:
    """The corners of the search space (low/high, every choice) over the fixed trial settings."""
    points = [{}, {}]
    for key, dist in search.space.items():
        kind, args = next(iter(dist.items()))
        lo, hi = (args[0], args[-1])
        points[0][key], points[1][key] = lo, hi
        if kind == "choice":
            points += [{key: value} for value in args]
    return [{**trial, **point} for point in points]


def metric_key(name: str, config: TrialConfig, field_name: str) -> str:
    """The key a spec's metric name stands for under `config` (short forms resolved), or SpecError."""
    try:
        return resolve(name, [task_segment(t) for t in config.zero_shot])
    except ValueError as err:
        raise SpecError(f"{field_name}: {err}") from None


def reported_key(name: str, config: TrialConfig, field_name: str) -> str:
    """`metric_key`, checked to be a metric the trial under `config` actually reports."""
    from trainables.evaluate import reported_metric

    key = metric_key(name, config, field_name)
    _need(reported_metric(key, config), field_name,
          f"{name!r} is not a metric this trial reports (e.g. val/acc, test/acc, train/loss, attn/entropy/mean, "
          "attn/delta_entropy_pct, repr/cka/mean, zeroshot/<task>/retention, or retention for the first task's)")
    return key


def parse_spec(raw: Any, source: str = "") -> Spec:
    """Validate a loaded YAML document and return the Spec; SpecError on the first problem."""
    _need(isinstance(raw, dict), "spec", f"{source or 'the spec'} must be a mapping with keys such as name, trial, "
          f"grid, search; it holds {'nothing' if raw is None else 'a ' + type(raw).__name__}")
    _keys(raw, "", TOP_KEYS)
    _need("name" in raw, "name", "required (letters, digits, _ . -)")
    _need(isinstance(raw["name"], str) and NAME_RE.match(raw["name"]) is not None, "name",
          "must be 1-64 letters, digits, _ . - (it names the MLflow experiment and the Tune directory)")
    trial = raw.get("trial") or {}
    _need(isinstance(trial, dict), "trial", "must be a mapping of trial config keys")
    _trial_keys(trial, "trial")
    grid = raw.get("grid") or {}
    _need(isinstance(grid, dict), "grid", "must map trial config keys to lists of values")
    _trial_keys(grid, "grid")
    for key, values in grid.items():
        _need(isinstance(values, list) and len(values) > 0, f"grid.{key}", "must be a non-empty list")
    variants = raw.get("variants") or []
    _need(isinstance(variants, list) and all(isinstance(v, dict) and v for v in variants), "variants",
          "must be a list of non-empty mappings of trial config keys")
    count = math.prod(len(values) for values in grid.values()) * max(1, len(variants))
    _need(count <= MAX_TRIALS, "grid", f"expands to {count:,} trials, more than the limit of {MAX_TRIALS:,} "
          "per sweep; split it into several specs")
    for i, variant in enumerate(variants):
        _trial_keys(variant, f"variants[{i}]")
    search = _search(raw["search"]) if raw.get("search") is not None else None
    _need(not (search and (grid or variants)), "search",
          "cannot be combined with grid/variants (Optuna proposes every point); use choice in search.space")
    spec = Spec(name=raw["name"], description=str(raw.get("description", "")), trial=trial, grid=grid,
                variants=variants, search=search, source=source)
    _resources_and_limits(spec, raw)
    _validate_trials(spec)
    return spec


def _resources_and_limits(spec: Spec, raw: dict) -> None:
    resources = _keys(raw.get("resources") or {"cpu": 1}, "resources", RESOURCE_KEYS)
    for key, value in resources.items():
        _need(_number(value) and value >= 0, f"resources.{key}",
              "must be a finite number >= 0 (fractions allowed, e.g. gpu: 0.5 packs two trials per GPU)")
    spec.resources = {k: float(v) for k, v in resources.items()}
    for key in ("max_concurrent", "max_failures"):
        if key in raw:
            value = raw[key]
            _need(_integer(value) and value >= 0, key, "must be an integer >= 0")
            setattr(spec, key, value)
    if raw.get("scheduler") is not None:
        spec.scheduler = _scheduler(raw["scheduler"])
    analysis = raw.get("analysis") or {}
    _need(isinstance(analysis, dict), "analysis", f"must be a mapping ({', '.join(SPEC_KEYS)})")
    try:
        spec.analysis = options_from_spec(analysis)
    except ValueError as err:
        raise SpecError(str(err)) from None


def _scheduler(raw: Any) -> dict[str, Any]:
    """ASHA settings, checked the way ASHAScheduler asserts them (it would fail after Ray started);
    the grace period's upper bound needs the trial configs: see `_validate_trials`."""
    sched = _keys(raw, "scheduler", SCHEDULER_KEYS)
    _need(sched.get("type", "asha") == "asha", "scheduler.type", "must be asha")
    _need(isinstance(sched.get("metric"), str), "scheduler.metric",
          "required: the one metric name ASHA compares trials on, e.g. val/acc")
    _need(sched.get("mode", "max") in MODES, "scheduler.mode", "must be max or min")
    sched = {"type": "asha", "mode": "max", "grace_period": 1, "reduction_factor": 3, **sched}
    grace, factor = sched["grace_period"], sched["reduction_factor"]
    _need(_integer(grace) and grace >= 1, "scheduler.grace_period", f"must be an integer >= 1, got {grace!r}")
    _need(_number(factor) and factor > 1, "scheduler.reduction_factor",
          f"must be a number > 1 (e.g. 3: keep the top third at each rung), got {factor!r}")
    return sched


def _validate_trials(spec: Spec) -> None:
    configs = [_check_config(point, "search.space" if spec.search else _where(spec, point))
               for point in spec.points()]
    first = configs[0]  # whose zero-shot tasks short forms name
    if spec.search:
        spec.search.objectives = {reported_key(metric, first, f"search.objectives.{metric}"): mode
                                  for metric, mode in spec.search.objectives.items()}
    if spec.scheduler:
        spec.scheduler["metric"] = reported_key(spec.scheduler["metric"], first, "scheduler.metric")
        reports = max(config.epochs for config in configs) + 1  # ASHA's max_t: see sweep.tune_config
        grace = spec.scheduler["grace_period"]
        _need(grace <= reports, "scheduler.grace_period",
              f"must be an integer in [1, epochs + 1 = {reports}] (reports per trial), got {grace!r}")
    opts = spec.analysis
    if opts.metrics:
        opts.metrics = [metric_key(m, first, "analysis.metrics") for m in opts.metrics]
    if opts.pareto:
        opts.pareto = {metric_key(m, first, "analysis.pareto"): sense for m, sense in opts.pareto.items()}
    _check_datasets(configs)


def _check_datasets(configs: list[TrialConfig]) -> None:
    """Local dataset paths exist and hold readable images of 2+ classes; each path is read once."""
    from trainables.dataset_check import check_local_dataset

    names = {("dataset", c.dataset) for c in configs} | {("zero_shot", t) for c in configs for t in c.zero_shot}
    for key, name in sorted(names):
        try:
            check_local_dataset(key, name)
        except ConfigError as err:
            raise SpecError(str(err)) from None


def _where(spec: Spec, values: dict) -> str:
    varied = {k: values[k] for k in values if k in spec.grid or any(k in v for v in spec.variants)}
    return "trial " + ", ".join(f"{k}={v}" for k, v in varied.items()) if varied else "trial"


def resolve_spec_path(spec: str | None) -> Path:
    """A spec argument: a file path, or the name of a ready spec in orchestrator/sweeps/ (no SPEC = demo)."""
    if spec is None:
        return SWEEPS_DIR / "demo.yaml"
    path = Path(spec)
    if path.exists():
        return path
    ready = SWEEPS_DIR / f"{spec}.yaml"
    if ready.exists():
        return ready
    known = ", ".join(sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml")))
    raise SpecError(f"spec: {spec!r} is neither a file nor a ready spec; ready specs: {known}")


def load_spec(spec: str | None) -> Spec:
    """Read and validate a spec file (strict safe YAML: see orchestrator/strict_yaml.py)."""
    path = resolve_spec_path(spec)
    try:
        raw = parse_yaml(read_text(path))
    except YamlError as err:
        raise SpecError(f"spec: {path} {err}") from None
    except OSError as err:
        raise SpecError(f"spec: cannot read {path}: {err.strerror}") from None
    return parse_spec(raw, source=str(path))

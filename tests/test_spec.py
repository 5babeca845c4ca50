"""Sweep specs and CLI input: ready specs validate; malformed input -> exit 2, one line, nothing started."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main as driftlab
from orchestrator.spec import SWEEPS_DIR, load_spec
from orchestrator.tracking import free_port

ROOT = Path(__file__).resolve().parents[1]
GOOD = dict(name="t", trial={"epochs": 2}, grid={"method": ["ft", "lora"], "lr": [0.001]})


def test_ready_specs_and_cluster_file_validate(capsys):
    specs = sorted(SWEEPS_DIR.glob("*.yaml"))
    assert {p.stem for p in specs} >= {"demo", "matched_lr", "gta_lambda", "optuna_pareto"}
    assert driftlab(["validate", *map(str, specs), str(ROOT / "cluster.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid Ray cluster config" in out and "'demo': 27 trials" in out


def test_ready_specs_start_with_purpose_command_and_cost():
    for path in SWEEPS_DIR.glob("*.yaml"):
        head = path.read_text().split("\nname:")[0]
        assert "Command:" in head and "Expected cost:" in head and head.startswith("#"), path.name


def test_demo_matches_the_documented_design():
    spec = load_spec("demo")
    configs = spec.configs()
    methods = {(c["method"], c.get("gta_lambda", 0)) for c in configs}
    assert methods == {("ft", 0), ("lora", 0), ("lp", 0), ("ft", 0.1), ("ft", 0.3)}
    assert {c["dataset"] for c in configs} == {"embedded/shade"}
    # The matched-learning-rate design: ft and lora at the same >= 3 rates spanning >= 1 decade, 3 seeds each.
    lrs = {m: {c["lr"] for c in configs if c["method"] == m and not c.get("gta_lambda")} for m in ("ft", "lora")}
    assert lrs["ft"] == lrs["lora"] and len(lrs["ft"]) >= 3 and max(lrs["ft"]) / min(lrs["ft"]) >= 10
    assert {c["seed"] for c in configs} == {0, 1, 2}
    # GTA at the top rate.
    assert {c["lr"] for c in configs if c.get("gta_lambda")} == {max(lrs["ft"])}


def test_grid_expands_cartesian_times_variants():
    spec = load_spec(None)
    assert len(spec.configs()) == 3 * 9  # seeds x variants


def _spec(tmp_path, **changes) -> str:
    raw = {**GOOD, **changes}
    raw = {k: v for k, v in raw.items() if v is not None}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


BAD_SPECS = [
    (dict(nmae="x"), "nmae"),
    (dict(name=None), "name"),
    (dict(name="my sweep!"), "name"),
    (dict(trial={"lrr": 0.1}), "trial.lrr"),
    (dict(grid={"lr": []}), "grid.lr"),
    (dict(grid={"lr": 0.1}), "grid.lr"),
    (dict(grid={"method": ["ft", "full"]}), "trial method=full"),
    (dict(grid={"dataset": ["imagenet_xyz"]}), "trial dataset=imagenet_xyz"),
    (dict(grid={"lr": [-1.0]}), "trial lr=-1.0"),
    (dict(trial={"zero_shot": ["embedded/smell"]}), "trial"),
    (dict(variants=["ft"]), "variants"),
    (dict(grid=None, search={"space": {"lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2,
                             "objectives": {"val/accuracy": "max"}}), "search.objectives.val/accuracy"),
    (dict(search={"space": {"lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2,
                  "objectives": {"val/acc": "max"}}), "search"),
    (dict(grid=None, search={"space": {"lr": {"logunif": [1e-4, 1e-2]}}, "num_samples": 2,
                             "objectives": {"val/acc": "max"}}), "search.space.lr"),
    (dict(grid=None, search={"space": {"lr": {"loguniform": [0, 1e-2]}}, "num_samples": 2,
                             "objectives": {"val/acc": "max"}}), "search.space.lr"),
    (dict(grid=None, search={"space": {"lr": {"uniform": [1e-4, 1e-2]}}, "num_samples": 0,
                             "objectives": {"val/acc": "max"}}), "search.num_samples"),
    (dict(grid=None, search={"space": {"lr": {"uniform": [1e-4, 1e-2]}}, "num_samples": 2,
                             "objectives": {"val/acc": "maximize"}}), "search.objectives.val/acc"),
    (dict(grid=None, search={"space": {"method": {"choice": ["ft", "qlora"]}}, "num_samples": 2,
                             "objectives": {"val/acc": "max"}}), "search.space"),
    (dict(scheduler={"metric": "zeroshot/cifar100/retention"}), "scheduler.metric"),
    (dict(scheduler={"type": "hyperband", "metric": "val/acc"}), "scheduler.type"),
    (dict(resources={"cpu": 1, "tpu": 1}), "resources.tpu"),
    (dict(resources={"gpu": -0.5}), "resources.gpu"),
    (dict(max_failures=-1), "max_failures"),
    (dict(max_concurrent="two"), "max_concurrent"),
    (dict(analysis={"families": ["paired", "anova"]}), "analysis.families"),
]


@pytest.mark.parametrize("changes,field", BAD_SPECS)
def test_bad_spec_is_one_line_exit_2_and_starts_nothing(tmp_path, monkeypatch, capsys, changes, field):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    assert driftlab(["run", _spec(tmp_path, **changes)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"driftlab: {field}") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "home").exists()  # no MLflow store, no Tune dir: nothing ran
    import ray
    assert not ray.is_initialized()
    assert driftlab(["validate", _spec(tmp_path, **changes)]) == 2


@pytest.mark.parametrize("text,field", [
    ("name: [unclosed", "spec"),
    ("- just\n- a list\n", "(unknown|.*must be a mapping)"),
])
def test_malformed_yaml(tmp_path, capsys, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert driftlab(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("driftlab:")


def test_bad_cli_calls(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    cases = [
        (["run", "no_such_spec"], "driftlab: spec:"),
        (["run", "--name", "bad name"], "driftlab: name:"),
        (["run", "--num-cpus", "0"], "driftlab: num-cpus:"),
        (["run", "--tracking-uri", f"http://127.0.0.1:{free_port()}"], "driftlab: tracking-uri:"),
        (["frobnicate"], "driftlab: command:"),
        (["sync", "never_ran"], "driftlab: name:"),
    ]
    for argv, prefix in cases:
        assert driftlab(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(prefix) and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "home" / "mlflow").exists()


def test_broken_cluster_file_is_caught_by_rays_schema(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    node_type = next(iter(raw["available_node_types"].values()))
    node_type["resources"] = {"GPU": 0.5}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert driftlab(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftlab: cluster") and len(err.splitlines()) == 1


def test_unknown_spec_key_inside_search_space(tmp_path, capsys):
    text = textwrap.dedent("""
        name: s
        search:
          space: {lrr: {uniform: [0.1, 0.2]}}
          num_samples: 2
          objectives: {val/acc: max}
    """)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert driftlab(["validate", str(path)]) == 2
    assert capsys.readouterr().err.startswith("driftlab: search.space.lrr:")


def test_metric_short_forms_resolve_to_the_first_zero_shot_task():
    from orchestrator.spec import parse_spec

    spec = parse_spec({"name": "s", "trial": {"zero_shot": ["embedded/colour"]},
                       "search": {"space": {"lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2,
                                  "objectives": {"val/acc": "max", "retention": "max"}},
                       "scheduler": {"metric": "zeroshot_acc"},
                       "analysis": {"metrics": ["retention", "val/acc"],
                                    "pareto": {"val/acc": "max", "retention": "max"}}})
    assert spec.search.objectives == {"val/acc": "max", "zeroshot/embedded_colour/retention": "max"}
    assert spec.scheduler["metric"] == "zeroshot/embedded_colour/acc"
    assert spec.analysis.metrics == ["zeroshot/embedded_colour/retention", "val/acc"]
    assert spec.analysis.pareto == {"val/acc": "max", "zeroshot/embedded_colour/retention": "max"}


def test_a_short_form_without_a_zero_shot_task_is_one_line(tmp_path, capsys):
    path = _spec(tmp_path, trial={"zero_shot": []}, scheduler={"metric": "retention"})
    assert driftlab(["validate", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftlab: scheduler.metric: 'retention'") and len(err.splitlines()) == 1, err


def test_asha_max_t_covers_the_longest_trial_of_the_grid():
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import tune_config

    # epochs only in the grid (the trial section has none): the longest trial makes 6 + 1 reports.
    grid = parse_spec({"name": "g", "grid": {"epochs": [2, 6], "method": ["ft"]}, "scheduler": {"metric": "val/acc"}})
    assert tune_config(grid).scheduler._max_t == 7
    variants = parse_spec({"name": "v", "trial": {"epochs": 2}, "variants": [{"method": "ft"}, {"epochs": 5}],
                           "scheduler": {"metric": "val/acc"}})
    assert tune_config(variants).scheduler._max_t == 6
    search = parse_spec({"name": "s", "search": {"space": {"epochs": {"int": [1, 3]}}, "num_samples": 2,
                                                 "objectives": {"val/acc": "max"}},
                         "scheduler": {"metric": "val/acc"}})
    assert tune_config(search).scheduler._max_t == 4

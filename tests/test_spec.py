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
    # Cluster specs (cpu: 4, gpu: 0.5 per trial) are valid for a cluster, not for this 2-CPU machine.
    assert driftlab(["validate", *map(str, specs), str(ROOT / "cluster.yaml"), "--address", "auto"]) == 0
    out = capsys.readouterr().out
    assert "valid Ray cluster config" in out and "'demo': 27 trials" in out
    assert "SSH ingress: security group" in out
    assert driftlab(["validate", "demo"]) == 0


def test_ready_specs_on_real_models_set_every_size_the_embedded_world_calibrates():
    from trainables.config import calibrated_defaults_left

    left = {path.stem: calibrated_defaults_left(load_spec(str(path)).points()) for path in SWEEPS_DIR.glob("*.yaml")}
    assert left == {name: [] for name in left}
    # The check bites: matched_lr's ViT-B/32 trials without their own batch size would run at the embedded one.
    spec = load_spec("matched_lr")
    assert calibrated_defaults_left([{k: v for k, v in c.items() if k != "batch_size"} for c in spec.points()]) == [
        "batch_size"]


def test_validate_names_the_embedded_sizes_a_real_model_spec_leaves(tmp_path, tiny_clip_dir, capsys):
    path = _spec(tmp_path, trial={"model": tiny_clip_dir, "epochs": 2, "batch_size": 8, "zeroshot_size": 60})
    assert driftlab(["validate", path]) == 0
    out = capsys.readouterr().out
    assert "note: data_fraction 0.5, probe_size 32: the embedded world's defaults" in out
    assert driftlab(["validate", _spec(tmp_path)]) == 0 and "note:" not in capsys.readouterr().out


def test_ready_specs_start_with_purpose_command_and_cost():
    for path in SWEEPS_DIR.glob("*.yaml"):
        head = path.read_text().split("\nname:")[0]
        assert "Command:" in head and "Expected cost:" in head and head.startswith("#"), path.name


def test_demo_matches_the_documented_design():
    spec = load_spec("demo")
    configs = spec.configs()
    methods = {(c["method"], c.get("gta_lambda", 0)) for c in configs}
    assert methods == {("ft", 0), ("lora", 0), ("lp", 0), ("ft", 0.01), ("ft", 0.03)}
    assert {c["dataset"] for c in configs} == {"embedded/shade"}
    # The matched-learning-rate design: ft and lora at the same >= 3 rates spanning >= 1 decade, 3 seeds each.
    lrs = {m: {c["lr"] for c in configs if c["method"] == m and not c.get("gta_lambda")} for m in ("ft", "lora")}
    assert lrs["ft"] == lrs["lora"] and len(lrs["ft"]) >= 3 and max(lrs["ft"]) / min(lrs["ft"]) >= 10
    assert {c["seed"] for c in configs} == {0, 1, 2}
    # GTA at the top rate.
    assert {c["lr"] for c in configs if c.get("gta_lambda")} == {max(lrs["ft"])}


def test_demo_lora_trains_the_tower_share_that_rank_8_trains_on_vit_b32():
    """The demo's LoRA rank is scaled to the tiny tower's width: peft's own LoRA weights on the embedded
    tower are within a factor of 2 of the share r 8 on q and v makes of ViT-B/32's image tower."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from trainables.config import TrialConfig
    from trainables.drift import tower
    from trainables.trial import Trial

    config = next(c for c in load_spec("demo").configs() if c["method"] == "lora")
    model = Trial(TrialConfig.from_dict({**config, "zero_shot": [], "probe_size": 8})).model
    params = [(n, p) for part in tower(model.clip_model()) for n, p in part.named_parameters()]
    lora = sum(p.numel() for n, p in params if "lora_" in n)
    base = sum(p.numel() for n, p in params if "lora_" not in n)
    with torch.device("meta"):  # CLIPVisionConfig's defaults are ViT-B/32's shape; no weights needed
        vit = CLIPVisionModelWithProjection(CLIPVisionConfig())
    vit_share = 12 * 2 * 8 * (768 + 768) / sum(p.numel() for p in vit.parameters())  # 12 layers x {q, v}
    assert 0.5 <= (lora / base) / vit_share <= 2, (lora, base, vit_share)


def test_the_attention_seeds_study_runs_the_demos_top_rate_cells_on_more_seeds():
    demo = load_spec("demo").configs()
    top = max(c["lr"] for c in demo if c["method"] == "ft")
    study = load_spec("embedded_attention_seeds").configs()
    for method in ("ft", "lora"):
        cells = [c for c in study if c["method"] == method]
        assert {c["seed"] for c in cells} == set(range(8))
        ours = {k: v for k, v in cells[0].items() if k != "seed"}
        theirs = next({k: v for k, v in c.items() if k != "seed"} for c in demo
                      if c["method"] == method and c["lr"] == top and not c.get("gta_lambda"))
        assert ours == theirs


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
    # Checked before launch since issue 13 (each used to pass validate and fail after Ray and MLflow started).
    (dict(scheduler={"metric": "val/acc", "grace_period": "x"}), "scheduler.grace_period"),
    (dict(scheduler={"metric": "val/acc", "grace_period": 0}), "scheduler.grace_period"),
    (dict(scheduler={"metric": "val/acc", "reduction_factor": 0}), "scheduler.reduction_factor"),
    (dict(scheduler={"metric": ["val/acc"]}), "scheduler.metric"),
    (dict(grid=None, search={"space": {"lr": {"loguniform": [1e-4, 1e-2]}}, "num_samples": 2,
                             "objectives": {"val/acc": "max"}, "seed": "abc"}), "search.seed"),
    (dict(grid=None, search={"space": {"lr": {"uniform": [0, float("inf")]}}, "num_samples": 2,
                             "objectives": {"val/acc": "max"}}), "search.space.lr"),
    (dict(grid=None, search={"space": {"lr": {"uniform": [1e-4, 1e-2]}}, "num_samples": 10**9,
                             "objectives": {"val/acc": "max"}}), "search.num_samples"),
    (dict(grid={"lr": [float("inf")]}), "trial lr=inf"),
    (dict(trial={"weight_decay": float("nan")}), "trial lr=0.001, method=ft: weight_decay"),
    (dict(grid={"seed": list(range(1000)), "batch_size": list(range(1, 1001)), "probe_size": list(range(1, 1001)),
                "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]}), "grid"),
    (dict(resources={"cpu": 100}), "resources.cpu"),
    (dict(resources={"cpu": float("inf")}), "resources.cpu"),
    (dict(trial={"dataset": "./no/such/folder"}), "trial lr=0.001, method=ft: dataset: './no/such/folder' does not exist"),
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


BOMB = "name: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{k}: &{k} [{', '.join(['*' + j] * 10)}]\n" for j, k in zip("abcde", "bcdef"))


@pytest.mark.parametrize("content,expected", [
    ("name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
    (BOMB.encode(), "alias bomb"),
    (b"name: r\ngrid: &g {seed: *g}\n", "refers to itself"),
    (b"name: d\ntrial: {lr: 0.1}\ngrid: {seed: [0]}\ntrial: {lr: 0.2}\n", "duplicate key 'trial'"),
    (b"name: d\ntrial: {lr: 0.1, lr: 0.2}\n", "duplicate key 'lr'"),
    (b"", "must be a mapping"),
    (b"- a\n- list\n", "must be a mapping"),
    (b"42\n", "must be a mapping"),
])
def test_malformed_spec_file_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, content, expected):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    for command in ("run", "validate"):
        assert driftlab([command, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"driftlab: spec: {path}") and expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "home").exists()


def _image_folder(root: Path, classes=("cat", "dog"), per_class=4) -> Path:
    import numpy as np
    from PIL import Image

    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), i * 40, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _no_images(root: Path) -> Path:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        (root / name / "notes.txt").write_text("not an image")
    return root


def _corrupt_png(root: Path) -> Path:
    _image_folder(root)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _truncated_png(root: Path) -> Path:
    _image_folder(root, per_class=2)
    image = root / "cat" / "0.png"
    image.write_bytes(image.read_bytes()[:40])
    return root


@pytest.mark.parametrize("make,expected", [
    (_no_images, "holds no images"),
    (_corrupt_png, "is not a readable image"),
    (_truncated_png, "is not a readable image"),
    (lambda root: _image_folder(root, classes=("cat",)), "has one class ('cat')"),
])
def test_bad_image_folder_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys, make, expected):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    folder = make(tmp_path / "images")
    spec = _spec(tmp_path, trial={"dataset": str(folder)})
    for argv in (["run", spec], ["validate", spec], ["trial", "--dataset", str(folder), "--epochs", "1"]):
        assert driftlab(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("driftlab: dataset:") and expected in err[-1], err
        assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "home").exists()


def test_a_missing_dataset_path_is_not_reported_as_missing_from_the_hub_cache(capsys):
    assert driftlab(["trial", "--dataset", "/no/such/folder"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftlab: dataset: '/no/such/folder' does not exist") and "cache" not in err


@pytest.mark.parametrize("argv,prefix", [
    (["trial", "--lr", "inf"], "driftlab: lr: must be a finite number"),
    (["trial", "--lr", "nan"], "driftlab: lr: must be a finite number"),
    (["trial", "--warmup-frac=-inf"], "driftlab: warmup_frac: must be a finite number"),
    (["run", "--bogus"], "driftlab: unrecognized arguments: --bogus"),
    (["trial", "--epochs"], "driftlab: argument --epochs"),
    (["ui", "--port", "http"], "driftlab: argument --port"),
    (["ui", "--port", "0"], "driftlab: port:"),
    (["validate"], "driftlab: the following arguments are required"),
    (["run", "--tracking-uri", "../escape_store"], "driftlab: tracking-uri: '../escape_store' is not an http(s)"),
    (["run", "--tracking-uri", "sqlite:///rel.db"], "driftlab: tracking-uri: 'sqlite:///rel.db' is not an http(s)"),
    (["run", "--tracking-uri", "file:///tmp/mlruns"], "driftlab: tracking-uri:"),
])
def test_bad_flags_are_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, prefix):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    assert driftlab(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(prefix) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "home").exists()


def test_out_pointing_at_a_file_is_refused_before_training(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    for out in (target, target / "sub"):
        assert driftlab(["trial", "--out", str(out), "--epochs", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"driftlab: out: {str(target)!r} is a file; --out needs a directory (created if missing)"
    assert target.read_text() == "keep me"


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory this process cannot write to, even as root (chattr +i; chmod otherwise)."""
    import os
    import subprocess

    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a directory read-only for root here (no chattr)")
        yield path
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)


def test_read_only_storage_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys, read_only_dir):
    monkeypatch.setenv("DRIFTLAB_HOME", str(tmp_path / "home"))
    for storage in (read_only_dir, read_only_dir / "runs"):
        assert driftlab(["run", _spec(tmp_path), "--storage", str(storage)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"driftlab: storage: {str(storage)!r} is not writable") and len(err.splitlines()) == 1
    assert not (tmp_path / "home").exists()


def test_cluster_file_on_aws_must_restrict_ssh_with_its_own_security_group(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    del raw["available_node_types"]["gpu_worker"]["node_config"]["SecurityGroupIds"]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert driftlab(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftlab: cluster.available_node_types.gpu_worker.node_config.SecurityGroupIds:")
    assert "0.0.0.0/0" in err and len(err.splitlines()) == 1


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

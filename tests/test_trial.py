"""The trial end to end: determinism, resume, divergence, evaluators, artifacts, and `driftlab trial`."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time

import pytest
import torch

from orchestrator.cli import main as driftlab
from trainables import keys
from trainables.config import ConfigError, TrialConfig
from trainables.evaluate import reported_metric
from trainables.trial import Trial, run_trial

CHANCE_SHADE = 100 / 4  # the default task
CHANCE_SIZE = 100 / 3


def collect(config: dict, checkpoint_dir=None, keep_checkpoints=None):
    reports = []

    def report(metrics, ckpt):
        reports.append(dict(metrics))
        if keep_checkpoints is not None and ckpt:
            shutil.copytree(ckpt, keep_checkpoints / f"epoch_{metrics['epoch']}")

    run_trial(config, report, checkpoint_dir)
    return reports


def test_same_seed_same_metrics_different_seed_different(tiny_clip_dir):
    config = dict(model=tiny_clip_dir, epochs=2, probe_size=16, zeroshot_size=120)
    a, b = collect({**config, "seed": 1}), collect({**config, "seed": 1})
    c = collect({**config, "seed": 2})
    untimed = lambda reports: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in reports]
    assert untimed(a) == untimed(b)
    assert a[-1]["train/loss"] != c[-1]["train/loss"]


def test_resume_from_a_checkpoint_continues_exactly(tiny_clip_dir, tmp_path):
    config = dict(model=tiny_clip_dir, method="lpft", epochs=3, lp_epochs=1, probe_size=16, zeroshot_size=120)
    full = collect(config, keep_checkpoints=tmp_path)
    resumed = collect(config, checkpoint_dir=str(tmp_path / "epoch_2"))
    assert [r["epoch"] for r in resumed] == [3]
    for key in ("train/loss", "val/acc", "test/acc", "attn/entropy/mean", "zeroshot/embedded_colour/acc"):
        assert resumed[-1][key] == pytest.approx(full[-1][key], rel=1e-5, abs=1e-6), key


def test_non_finite_loss_ends_the_trial_as_diverged(tiny_clip_dir):
    trial = Trial(TrialConfig.from_dict(dict(model=tiny_clip_dir, epochs=3, probe_size=16, zeroshot_size=60)))
    for phase in trial.phases:  # the fault comes from outside: a phase loss that turns NaN
        task_loss = phase.loss
        phase.loss = lambda model, x, y, boxes=None, ids=None, task_loss=task_loss: (
            task_loss(model, x, y, boxes=boxes, ids=ids)[0] * math.nan, {})
    reports = []
    trial.run(lambda metrics, _ckpt: reports.append(dict(metrics)))
    assert reports[-1]["status"] == "diverged" and reports[-1]["epoch"] == 1
    assert math.isnan(reports[-1]["train/loss"])


def test_epoch_zero_is_the_pretrained_model_and_every_metric_is_reported(tiny_clip_dir):
    reports = collect(dict(model=tiny_clip_dir, epochs=1, probe_size=24, zeroshot_size=120))
    first, last = reports[0], reports[-1]
    assert first["epoch"] == 0 and first["zeroshot/embedded_colour/retention"] == 100.0
    for metric in ("entropy", "entropy_norm", "mass95", "gini", "topk", "head_diversity", "mad", "rollout_entropy",
                   "box_alignment"):
        assert first[f"attn/delta_{metric}_pct"] == 0.0
        assert math.isfinite(last[f"attn/{metric}/mean"])
    for i in range(2):
        assert first[f"repr/cka/layer_{i}"] == pytest.approx(1.0)
        assert f"attn/entropy/layer_{i}" in last and f"attn/box_alignment/layer_{i}" in last
    assert 0 <= last["attn/mass95/mean"] <= 1 and 0 < last["attn/box_alignment/mean"] <= 1
    assert "test/acc" in last and last["status"] == "completed"
    # Every metric is a key of the one grammar, and validation knows the trial reports it.
    config = TrialConfig.from_dict(dict(model=tiny_clip_dir, epochs=1, probe_size=24, zeroshot_size=120))
    metrics = [k for k in last if "/" in k]
    assert all(keys.parse(k) is not None for k in metrics)
    assert [k for k in metrics if not reported_metric(k, config)] == [keys.TRIAL_S]  # only at the end


def test_checkpoints_every_epoch_or_after_an_interval_and_reporting_is_not_trial_time(tiny_clip_dir):
    config = TrialConfig.from_dict(dict(model=tiny_clip_dir, epochs=3, probe_size=16, zero_shot=[]))
    pause = 0.3  # spent in every report: the caller's time, never the trial's
    for every, expected in ((0.0, [1, 2, 3]), (3600.0, [3])):  # the last epoch always carries one
        carried = []

        def report(metrics, ckpt):
            if ckpt:
                carried.append(metrics["epoch"])
            time.sleep(pause)
        started = time.perf_counter()
        last = Trial(config).run(report, checkpoint_every_s=every)
        wall = time.perf_counter() - started
        assert carried == expected
        assert last[keys.TRIAL_S] <= wall - 4 * pause  # epoch 0's report, epochs 1-3's


def test_artifacts_are_written(tiny_clip_dir, tmp_path):
    trial = Trial(TrialConfig.from_dict(dict(model=tiny_clip_dir, method="lora", epochs=1, probe_size=8,
                                             zero_shot=[])))
    trial.run(lambda m, c: None)
    paths = trial.write_artifacts(tmp_path)
    assert {p.name for p in paths} == {"attention_heatmaps.png", "entropy_by_layer.png", "layer_metrics.csv",
                                       "trained_parts.safetensors"}
    assert all(p.stat().st_size > 100 for p in paths)
    from safetensors.torch import load_file
    parts = load_file(str(tmp_path / "trained_parts.safetensors"))
    assert any("lora_B" in k for k in parts) and "head.linear.weight" in parts


@pytest.mark.slow
# Each runs the CLI's default trial; the probe's check runs on size, which the pretrained embedding
# carries, so a head trained at the default lr 1e-3 clears the bar below.
# One full trial per method family (whole tower, probe, two-phase, peft, in-house module); every method's
# step is covered by the contract tests of test_methods.py, and the README's method table by a measured sweep.
@pytest.mark.parametrize("method,extra", [(m, ["--dataset", "embedded/size"] if m == "lp" else [])
                                          for m in ("ft", "lp", "lpft", "lora", "adapter")]
                         + [("ft", ["--gta-lambda", "0.1"])])
def test_cli_json_on_the_embedded_world_learns(method, extra, capsys):
    code = driftlab(["trial", "--method", method, *extra, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    metrics = json.loads(out)
    assert metrics["status"] == "completed" and metrics["epoch"] == TrialConfig().epochs
    # Learns: clearly above the chance a random head starts at. (At the default lr 1e-3 LoRA and
    # adapters learn the shade task slowly; full fine-tuning reaches > 90%.)
    assert metrics["val/acc"] > CHANCE_SHADE + 10, metrics["val/acc"]
    if "--gta-lambda" in extra:
        assert metrics["train/gta_penalty"] > 0


def test_cli_on_a_checkpoint_directory_without_tokenizer(tiny_clip_no_tokenizer_dir, capsys):
    assert driftlab(["trial", "--model", tiny_clip_no_tokenizer_dir, "--epochs", "1", "--zero-shot", "none",
                     "--probe-size", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    assert driftlab(["trial", "--model", tiny_clip_no_tokenizer_dir, "--epochs", "1", "--json"]) == 2
    assert "zero_shot" in capsys.readouterr().err


@pytest.mark.parametrize("argv,field", [
    (["--method", "full"], "method"),
    (["--lr", "fast"], "lr"),
    (["--lr", "-1"], "lr"),
    (["--epochs", "0"], "epochs"),
    (["--data-fraction", "1.5"], "data_fraction"),
    (["--dataset", "imagenet_xyz"], "dataset"),
    (["--dataset", "embedded/colour"], "dataset"),
    (["--zero-shot", "embedded/smell"], "zero_shot"),
    (["--lora-targets", "q,z"], "lora_targets"),
    (["--box-loss", "l1"], "box_loss"),
    (["--entropy-floor-ratio", "0"], "entropy_floor_ratio"),
    (["--method", "lpft", "--epochs", "2", "--lp-epochs", "2"], "lp_epochs"),
    (["--model", "/nonexistent/dir"], "model"),
    (["--stop-above", "0.3"], "stop_above"),
    (["--stop-metric", "drift/smell", "--stop-above", "0.3"], "stop_metric"),
    (["--wise-alphas", "0,2"], "wise_alphas"),
    (["--bogus", "1"], None),
])
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys):
    assert driftlab(["trial", *argv]) == 2
    err = capsys.readouterr().err.strip()
    if field:
        assert err.startswith(f"driftlab: {field}:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_a_gta_layer_past_the_models_is_one_clear_error(capsys):
    # The layer count is the checkpoint's, so this is found once the model is loaded, before training.
    assert driftlab(["trial", "--gta-lambda", "0.1", "--gta-layers", "7", "--epochs", "1", "--zero-shot", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("driftlab: gta_layers: [7] out of range; the image tower has")


def test_unknown_config_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"^lrr: unknown trial config key \(did you mean 'lr'\?\)"):
        TrialConfig.from_dict({"lrr": 1})


def test_console_script_prints_parseable_json_on_stdout(tiny_clip_dir):
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "trial", "--model", tiny_clip_dir, "--epochs",
                           "1", "--probe-size", "8", "--zeroshot-size", "60", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["epoch"] == 1 and "epoch" in proc.stderr


def test_zero_shot_head_initialisation_starts_at_clip_zero_shot_accuracy():
    # On size, which the pretrained model reads zero-shot (the default task it reads at chance by design).
    config = dict(dataset="embedded/size", epochs=1, data_fraction=0.25, zeroshot_size=60, probe_size=8)
    random_head = collect(config)[0]
    zero_shot_head = collect({**config, "head_init": "zeroshot"})[0]
    # The embedded CLIP names sizes zero-shot far above chance; a random head starts near chance.
    assert zero_shot_head["val/acc"] > 2 * CHANCE_SIZE > random_head["val/acc"] - 10


def test_a_non_clip_checkpoint_is_one_clear_error(tmp_path, capsys):
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                       intermediate_size=37)).save_pretrained(tmp_path / "vit")
    assert driftlab(["trial", "--model", str(tmp_path / "vit"), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("driftlab: model:") and "'vit' checkpoint" in err and "CLIP" in err


def test_eval_every_skips_drift_metrics_between_evaluations(tiny_clip_dir):
    reports = collect(dict(model=tiny_clip_dir, epochs=3, eval_every=2, probe_size=8, zeroshot_size=60))
    has_attn = ["attn/entropy/mean" in r for r in reports]
    assert has_attn == [True, False, True, True]  # epochs 0, 1, 2, and always the last
    assert all("val/acc" in r for r in reports)


def test_pretrained_zero_shot_is_measured_once_per_process_and_equals_a_fresh_measurement(tiny_clip_dir):
    from trainables import evaluate

    config = TrialConfig.from_dict(dict(model=tiny_clip_dir, epochs=1, probe_size=8, zeroshot_size=60,
                                        stop_metric="attn/delta_entropy_pct", stop_below=-1e9, stop_every_steps=1))
    evaluate._PRETRAINED_ZERO_SHOT.clear()
    first = Trial(config)
    measured = dict(evaluate._PRETRAINED_ZERO_SHOT)
    assert len(measured) == 2 * len(config.zero_shot)  # each task's split and the stop rule's probe subset
    second = Trial(TrialConfig.from_dict({**config.to_dict(), "seed": 1, "method": "lora"}))
    assert evaluate._PRETRAINED_ZERO_SHOT == measured  # reused, not measured again
    for trial in (first, second):
        # A fresh measurement on this trial's untrained tower (every method starts as the identity) agrees.
        model, ev = trial.model, trial.evaluator
        assert ev.baseline_zs == {name: ev._zero_shot_acc(model, *zs) for name, zs in ev.zero_shot.items()}
        assert ev.baseline_probe_zs == {name: ev._zero_shot_acc(model, *zs) for name, zs in ev.probe_zero_shot.items()}
        assert all(0 < acc <= 100 for acc in ev.baseline_zs.values())


def test_accuracy_read_in_evaluation_batches_equals_one_forward_over_the_split(tiny_clip_dir):
    from trainables import evaluate
    from trainables.splits import normalise

    trial = Trial(TrialConfig.from_dict(dict(model=tiny_clip_dir, epochs=1, probe_size=8, zeroshot_size=60)))
    split = trial.task.val.subset(list(range(150)))  # not a multiple of the 64-image CPU batch
    assert trial.evaluator.eval_batch == evaluate.EVAL_BATCH["cpu"] < len(split)
    trial.model.eval()
    with torch.no_grad():
        logits = trial.model(normalise(split.pixels, trial.mean, trial.std))
    by_hand = 100.0 * float((logits.argmax(-1) == split.labels).sum()) / len(split)
    assert trial.evaluator.accuracy(trial.model, split) == by_hand


def test_a_real_model_is_told_which_embedded_defaults_it_runs_with(tiny_clip_dir, capsys):
    from trainables.config import calibrated_defaults_left

    assert calibrated_defaults_left([{}]) == []  # the embedded world: the defaults are its own
    assert calibrated_defaults_left([{"model": tiny_clip_dir, "lr": 1e-5, "data_fraction": 1.0}]) == [
        "epochs", "batch_size", "zeroshot_size", "probe_size"]
    assert driftlab(["trial", "--model", tiny_clip_dir, "--epochs", "1", "--probe-size", "8", "--json"]) == 0
    note = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(note) == 1 and "lr 0.001, batch_size 32, data_fraction 0.5, zeroshot_size 360:" in note[0]


def test_pretrained_val_embeddings_are_read_once_per_process_and_give_each_heads_own_accuracy(tiny_clip_dir):
    from trainables import evaluate

    config = TrialConfig.from_dict(dict(model=tiny_clip_dir, epochs=1, probe_size=8, zeroshot_size=60))
    evaluate._PRETRAINED_VAL_EMBEDDINGS.clear()
    reports = collect(config.to_dict())
    assert len(evaluate._PRETRAINED_VAL_EMBEDDINGS) == 1  # filled by epoch 0, not by the moved tower's epoch 1
    cached = next(iter(evaluate._PRETRAINED_VAL_EMBEDDINGS.values()))
    # Different seeds and methods (LoRA and an adapter start as the identity) draw different heads on the
    # same untouched tower: each trial's cached accuracy equals a fresh full forward of its own model.
    for changes in ({"seed": 1}, {"seed": 2, "method": "lora"}, {"seed": 3, "method": "adapter"}):
        trial = Trial(TrialConfig.from_dict({**config.to_dict(), **changes}))
        fresh = trial.evaluator.accuracy(trial.model, trial.task.val)
        assert trial.evaluator.pretrained_val_accuracy(trial.model) == fresh
        assert next(iter(evaluate._PRETRAINED_VAL_EMBEDDINGS.values())) is cached  # reused, not embedded again
    first = Trial(config)
    assert reports[0]["val/acc"] == first.evaluator.accuracy(first.model, first.task.val)

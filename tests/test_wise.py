"""WiSE-FT: θ(α) = (1 − α)·θ₀ + α·θ reproduces the pretrained model at α = 0 and the trained one at α = 1."""

from __future__ import annotations

import pytest
import torch

from orchestrator.cli import main as driftlab
from trainables import keys
from trainables.config import TrialConfig
from trainables.errors import ConfigError
from trainables.trial import Trial
from trainables.wise import Interpolation, wise_metrics


def measured(report: dict) -> dict:
    return {k: v for k, v in report.items() if keys.measured(k) and k != keys.TEST_ACC}


def test_alpha_0_is_the_pretrained_model_and_alpha_1_the_trained_one(tiny_clip_dir, tmp_path):
    config = dict(model=tiny_clip_dir, epochs=1, probe_size=16, zeroshot_size=120, head_init="zeroshot",
                  lr=3e-3, wise_alphas="0,0.5,1")
    trial = Trial(TrialConfig.from_dict(config))
    reports = []
    trial.run(lambda metrics, _ckpt: reports.append(dict(metrics)))
    pretrained, trained = reports[0], reports[-1]
    zero, half, one = trial.wise_rows
    assert [zero["alpha"], half["alpha"], one["alpha"]] == [0.0, 0.5, 1.0]
    # Exactly (re-measured, not the cached pretrained reading): zero-shot, attention, CKA and the zero-shot head.
    base = measured(pretrained)
    assert base and {k: zero[k] for k in base} == base
    assert zero[keys.WEIGHT_DRIFT] == 0.0 and zero[keys.EMBEDDING_DRIFT] == 0.0
    tuned = measured(trained)
    assert {k: one[k] for k in tuned} == tuned and one[keys.TEST_ACC] == trained[keys.TEST_ACC]
    assert tuned[keys.WEIGHT_DRIFT] > 0
    # ‖θ(α) − θ₀‖ = α·‖θ − θ₀‖ for the tower weights.
    assert half[keys.WEIGHT_DRIFT] == pytest.approx(0.5 * one[keys.WEIGHT_DRIFT], rel=1e-5)
    # The model is left trained, and the rows become MLflow steps 0, 50, 100 of `wise/<key>`.
    assert trial.evaluator.run(trial.model, 1)[keys.VAL_ACC] == trained[keys.VAL_ACC]
    steps = wise_metrics(trial.wise_rows)
    assert [s for s, _ in steps] == [0, 50, 100] and steps[2][1][keys.wise(keys.TEST_ACC)] == one[keys.TEST_ACC]
    written = {p.name for p in trial.write_artifacts(tmp_path)}
    assert {"wise_frontier.csv", "wise_frontier.png", "trained_tower.safetensors"} <= written
    assert len((tmp_path / "wise_frontier.csv").read_text().splitlines()) == 4


def test_lora_at_scale_0_is_the_base_model_and_at_1_the_adapted_one(tiny_clip_dir):
    trial = Trial(TrialConfig.from_dict(dict(model=tiny_clip_dir, method="lora", epochs=1, probe_size=8,
                                             zero_shot=[])))
    torch.manual_seed(0)
    with torch.no_grad():  # a LoRA that has moved (B starts at 0)
        for name, p in trial.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    x = trial.evaluator.probe_x
    model = trial.model.eval()
    with torch.no_grad():
        adapted = model.embed(x)
        with model.clip.disable_adapter():
            base = model.embed(x)
        interpolation = Interpolation(model, trial.evaluator.weight_drift.pretrained, None)
        assert not torch.equal(adapted, base)
        interpolation.set(0.0)
        assert torch.equal(model.embed(x), base)
        interpolation.restore()
        assert torch.equal(model.embed(x), adapted)


def test_weights_without_a_pretrained_value_are_refused_in_one_line(tiny_clip_dir):
    trial = Trial(TrialConfig.from_dict(dict(model=tiny_clip_dir, method="adapter", epochs=1, probe_size=8,
                                             zero_shot=[])))
    with pytest.raises(ConfigError, match=r"^wise: .* has no pretrained value"):
        Interpolation(trial.model, trial.evaluator.weight_drift.pretrained, None)


@pytest.mark.parametrize("argv,field", [
    (["0123456789abcdef0123456789abcdef", "--alphas", "0,1.5"], "alphas"),
    (["0123456789abcdef0123456789abcdef", "--alphas", "0,0.5,0.5"], "alphas"),
    (["0123456789abcdef0123456789abcdef", "--alphas", "a"], "alphas"),
    (["not-a-run"], "run_id"),
    (["0123456789abcdef0123456789abcdef", "--tracking-uri", "http://127.0.0.1:9"], "tracking-uri"),
])
def test_bad_wise_input_is_one_line_and_exit_2(argv, field, capsys):
    assert driftlab(["wise", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"driftlab: {field}:") and len(err.splitlines()) == 1, err

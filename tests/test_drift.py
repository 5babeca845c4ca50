"""Weight drift, embedding drift, best-validation selection and the zero-shot prompt choice, against
independent computations."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from tests.test_methods import TRAINS, make_trial, one_step
from tests.test_trial import collect
from trainables import keys
from trainables.drift import WeightDrift
from trainables.metrics import embedding_drift
from trainables.data import load_zero_shot
from trainables.models import load_clip, text_classifier
from trainables.selection import BestEpoch


def tower_state(clip) -> dict[str, torch.Tensor]:
    """The image tower + projection by name, straight from a plain (unwrapped) CLIPModel."""
    return {n: p.detach().clone() for n, p in clip.named_parameters()
            if n.startswith(("vision_model.", "visual_projection."))}


def relative_distance(after: dict, before: dict) -> float:
    num = sum(float((after[n].double() - before[n].double()).pow(2).sum()) for n in before)
    den = sum(float(w.double().pow(2).sum()) for w in before.values())
    return math.sqrt(num / den)


def test_embedding_drift_by_hand():
    before = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    after = torch.tensor([[0.0, 5.0], [0.0, 1.0], [-3.0, -4.0]])  # cosines 0, 1, -1
    assert embedding_drift(before, after) == pytest.approx(1 - (0 + 1 - 1) / 3)
    assert embedding_drift(before, before * 7) == pytest.approx(0.0, abs=1e-12)


def test_full_fine_tuning_drift_is_the_relative_frobenius_distance(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="ft")
    before = tower_state(trial.model.clip)
    drift = trial.evaluator.weight_drift
    assert drift(trial.model) == 0.0
    one_step(trial, trial.phases[0])
    expected = relative_distance(tower_state(trial.model.clip), before)
    assert expected > 0 and drift(trial.model) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["lora", "dora", "vera", "ia3", "ln_tuning"])
def test_peft_drift_equals_the_merged_models(tiny_clip_dir, method):
    trial = make_trial(tiny_clip_dir, method=method)
    before = tower_state(load_clip(tiny_clip_dir).model)
    with torch.no_grad():  # the methods start as the identity: move what they train so the weights change
        for name, p in trial.model.named_parameters():
            if TRAINS[method](name):
                p.add_(torch.randn_like(p) * 0.05)
    drift = trial.evaluator.weight_drift(trial.model)
    merged = copy.deepcopy(trial.model.clip).merge_and_unload()
    expected = relative_distance(tower_state(merged), before)
    assert expected > 0 and drift == pytest.approx(expected, rel=1e-6)


def test_adapters_enter_the_numerator_only(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, method="adapter")
    added = [p for n, p in trial.model.named_parameters() if ".adapter." in n]
    with torch.no_grad():
        for p in added:
            p.fill_(0.01)
    norm0 = math.sqrt(sum(float(w.double().pow(2).sum()) for n, w in tower_state(trial.model.clip).items()
                          if ".adapter." not in n))
    expected = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in added)) / norm0
    assert trial.evaluator.weight_drift(trial.model) == pytest.approx(expected, rel=1e-9)


def test_a_trial_logs_both_drifts_zero_before_training(tiny_clip_dir):
    reports = collect(dict(model=tiny_clip_dir, epochs=1, probe_size=16, zeroshot_size=60, lr=1e-2))
    first, last = reports[0], reports[-1]
    assert first[keys.WEIGHT_DRIFT] == 0.0 and first[keys.EMBEDDING_DRIFT] == pytest.approx(0.0, abs=1e-12)
    assert last[keys.WEIGHT_DRIFT] > 0 and last[keys.EMBEDDING_DRIFT] > 0
    # Per-layer attention change, against the pretrained per-layer value.
    for i in range(2):
        base, now = first[keys.attn("entropy", i)], last[keys.attn("entropy", i)]
        assert last[keys.attn_delta("entropy", i)] == pytest.approx(100 * (now - base) / abs(base))


def test_best_epoch_keeps_the_first_of_the_highest_validation_accuracies():
    best = BestEpoch()
    taken = [best.offer(e, {keys.VAL_ACC: v, keys.TEST_ACC: t, keys.TRAIN_LOSS: 1.0}, lambda e=e: {"w": torch.tensor(e)})
             for e, v, t in [(0, 90.0, 0.0), (1, 50.0, 51.0), (2, 60.0, 61.0), (3, 60.0, 62.0), (4, float("nan"), 0.0)]]
    assert taken == [False, True, True, False, False]
    assert best.report() == {keys.BEST_EPOCH: 2, "best/val/acc": 60.0, "best/test/acc": 61.0}
    assert int(best.weights["w"]) == 2
    assert BestEpoch.from_state(best.state()) == best


def test_a_trial_reports_its_best_validation_epoch_and_measures_it(tiny_clip_dir, tmp_path):
    config = dict(epochs=3, probe_size=16, zeroshot_size=60, lr=3e-2)
    reports = collect(dict(model=tiny_clip_dir, **config), keep_checkpoints=tmp_path)
    vals = [r[keys.VAL_ACC] for r in reports[1:]]
    best_epoch = 1 + vals.index(max(vals))
    last = reports[-1]
    assert last[keys.BEST_EPOCH] == best_epoch and last[keys.best(keys.VAL_ACC)] == max(vals)
    at_best = reports[best_epoch]
    for key in (keys.retention("embedded_colour"), keys.EMBEDDING_DRIFT, keys.attn_delta("entropy")):
        assert last[keys.best(key)] == pytest.approx(at_best[key], rel=1e-6, abs=1e-9), key
    # The best epoch's test accuracy, read again from that epoch's checkpoint in a fresh trial.
    fresh = make_trial(tiny_clip_dir, **config)
    fresh._load(tmp_path / f"epoch_{best_epoch}")
    assert last[keys.best(keys.TEST_ACC)] == fresh.evaluator.test_accuracy(fresh.model)[keys.TEST_ACC]
    assert all(not k.startswith("best/train/") and not k.startswith("best/time/") for k in last)


def test_first_template_reads_zero_shot_with_one_prompt(tiny_clip_dir):
    trial = make_trial(tiny_clip_dir, zero_shot=["embedded/colour"], zeroshot_templates="first")
    classifier, _ = trial.evaluator.zero_shot["embedded_colour"]
    loaded = load_clip(tiny_clip_dir)
    classes, templates, _ = load_zero_shot("embedded/colour", loaded.image_processor)
    assert len(templates) > 1
    expected = text_classifier(loaded.model, loaded.tokenizer, classes, templates[:1], "cpu")
    assert torch.allclose(classifier, expected)
    assert not torch.allclose(classifier, text_classifier(loaded.model, loaded.tokenizer, classes, templates, "cpu"))

"""Drift-aware stopping in the trial loop: when it fires, what the trial reports; when it never fires, nothing changes."""

from __future__ import annotations

import math

import pytest

from trainables import keys
from trainables.config import TrialConfig
from trainables.stop_rule import StopRule
from trainables.trial import Trial, run_trial

TINY = dict(epochs=3, probe_size=16, zeroshot_size=120)


def collect(config: dict) -> list[dict]:
    reports = []
    run_trial(config, lambda metrics, _ckpt: reports.append(dict(metrics)))
    return reports


def untimed(report: dict) -> dict:
    return {k: v for k, v in report.items() if not k.startswith("time/")}


def test_patience_counts_evaluations_in_a_row_and_skips_ones_without_the_metric():
    rule = StopRule(keys.EMBEDDING_DRIFT, 0.3, above=True, patience=2)
    assert not rule.observe({keys.EMBEDDING_DRIFT: 0.4})
    assert not rule.observe({keys.VAL_ACC: 50.0})  # between evaluations: neither counts nor resets
    assert rule.observe({keys.EMBEDDING_DRIFT: 0.5})
    below = StopRule(keys.retention("t"), 90.0, above=False)
    assert not below.observe({keys.retention("t"): 90.0})  # strictly past the threshold
    assert below.observe({keys.retention("t"): math.nan})  # unmeasurable counts as past
    streak = StopRule(keys.EMBEDDING_DRIFT, 0.3, above=True, patience=2)
    streak.observe({keys.EMBEDDING_DRIFT: 0.4})
    assert not streak.observe({keys.EMBEDDING_DRIFT: 0.1}) and streak.streak == 0


def test_a_rule_that_fires_at_epoch_1_ends_the_trial_there_with_its_best_epoch(tiny_clip_dir):
    # Embedding drift is 0 for the pretrained model and > 0 once the tower moved: it is past 0 at epoch 1.
    reports = collect(dict(model=tiny_clip_dir, **TINY, stop_metric="drift/embedding", stop_above=0.0))
    last = reports[-1]
    assert [r["epoch"] for r in reports] == [0, 1]
    assert last["status"] == "stopped_drift" and last[keys.EMBEDDING_DRIFT] > 0
    assert last[keys.STOP_EPOCH] == 1 and last[keys.STOP_COMPUTE] == pytest.approx(1 / 3)
    assert last[keys.BEST_EPOCH] == 1 and last[keys.best(keys.TEST_ACC)] == last[keys.TEST_ACC]
    assert last[keys.best(keys.EMBEDDING_DRIFT)] == last[keys.EMBEDDING_DRIFT]


def test_a_rule_that_never_fires_changes_nothing(tiny_clip_dir):
    config = dict(model=tiny_clip_dir, **TINY, seed=3)
    plain = collect(config)
    ruled = collect({**config, "stop_metric": "retention", "stop_below": -1.0, "stop_patience": 2})
    assert [untimed(r) for r in ruled] == [untimed(r) for r in plain]
    assert ruled[-1]["status"] == "completed" and keys.STOP_EPOCH not in ruled[-1]


@pytest.mark.parametrize("values,field", [
    (dict(stop_above=0.3), "stop_above"),
    (dict(stop_metric="drift/embedding"), "stop_above"),
    (dict(stop_metric="drift/embedding", stop_above=0.3, stop_below=0.1), "stop_above"),
    (dict(stop_metric="attn/smell/mean", stop_above=1), "stop_metric"),
    (dict(stop_metric="test/acc", stop_below=1), "stop_metric"),
    (dict(stop_metric="retention", stop_below=90, zero_shot=[]), "stop_metric"),
    (dict(stop_metric="val/acc", stop_below=10, stop_patience=0), "stop_patience"),
    (dict(stop_metric="val/acc", stop_below=10, stop_every_steps=5), "stop_every_steps"),
    (dict(stop_every_steps=5), "stop_every_steps"),
])
def test_bad_stop_rules_are_refused_naming_the_field(values, field):
    from trainables.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^{field}: "):
        TrialConfig.from_dict(values)


def test_every_n_steps_the_probe_can_stop_the_trial_mid_epoch(tiny_clip_dir):
    # Weight drift is > 0 after the first optimiser step: the probe after step 2 fires.
    config = dict(model=tiny_clip_dir, **TINY, data_fraction=0.5, stop_metric="drift/weight_rel", stop_above=0.0,
                  stop_every_steps=2)
    trial = Trial(TrialConfig.from_dict(config))
    reports = []
    trial.run(lambda metrics, _ckpt: reports.append(dict(metrics)))
    last = reports[-1]
    assert [r["epoch"] for r in reports] == [0, 1] and last["status"] == "stopped_drift"
    assert trial.steps_per_epoch() > 2 and trial.steps_done == 2
    assert last[keys.STOP_COMPUTE] == pytest.approx(2 / (3 * trial.steps_per_epoch()))
    probe = trial.evaluator.probe(trial.model)
    assert probe[keys.WEIGHT_DRIFT] == last[keys.WEIGHT_DRIFT] > 0 and keys.retention("embedded_colour") in probe

"""The shipped world shows what it is built to show, on a short run of the real trial:
pretrained zero-shot < linear probe < full fine-tuning on the default task."""

from __future__ import annotations

import pytest

from trainables.config import TrialConfig
from trainables.trial import run_trial


def final_metrics(**config) -> dict:
    reports = []
    run_trial(dict(model="embedded", probe_size=16, zeroshot_size=240, **config), lambda m, _: reports.append(m))
    return reports[0], reports[-1]


@pytest.mark.slow
def test_zero_shot_below_linear_probe_below_full_fine_tuning_on_the_default_task():
    task = TrialConfig().dataset
    # Zero-shot on the task itself: epoch 0 is the pretrained model.
    before, lp = final_metrics(method="lp", lr=1e-2, epochs=2, data_fraction=0.5, zero_shot=[task])
    _, ft = final_metrics(method="ft", lr=1e-3, epochs=2, data_fraction=0.5, zero_shot=[])
    lp, ft = {"test/acc": lp["test/acc"]}, {"test/acc": ft["test/acc"]}
    zero_shot = before[f"zeroshot/{task.replace('/', '_')}/acc"]
    assert zero_shot < lp["test/acc"] and lp["test/acc"] + 15 <= ft["test/acc"], (zero_shot, lp, ft)

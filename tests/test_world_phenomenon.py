"""The shipped world shows what it is built to show, on a short run of the real trial:
pretrained zero-shot < linear probe < full fine-tuning on the default task."""

from __future__ import annotations

import pytest

from tests.test_trial import collect
from trainables.config import TrialConfig

SHORT = dict(model="embedded", epochs=3, data_fraction=0.5, batch_size=32, probe_size=16, zeroshot_size=240)


@pytest.mark.slow
def test_zero_shot_below_linear_probe_below_full_fine_tuning_on_the_default_task():
    task = TrialConfig().dataset
    # Zero-shot on the task itself: epoch 0 is the pretrained model.
    lp_reports = collect({**SHORT, "method": "lp", "lr": 1e-2, "zero_shot": [task]})
    ft_reports = collect({**SHORT, "method": "ft", "lr": 1.5e-3, "zero_shot": []})
    zero_shot = lp_reports[0][f"zeroshot/{task.replace('/', '_')}/acc"]
    lp, ft = lp_reports[-1]["test/acc"], ft_reports[-1]["test/acc"]
    # The pretrained embedding carries most of the shade (the probe reads ~82%), fine-tuning the rest.
    assert zero_shot + 20 <= lp and lp + 5 <= ft, (zero_shot, lp, ft)

"""What a WiSE-FT sweep at a trial's end costs, on the embedded demo's trial settings.

- wise_alpha_over_eval: seconds per α of `wise_sweep` over one end-of-epoch evaluation
  (`Evaluator.run` + test accuracy) of the same model: each α is one such evaluation, plus
  moving the weights.
- wise_over_epoch: a 5-α sweep (`--wise-alphas 0,0.25,0.5,0.75,1`) over one training epoch.
"""

from __future__ import annotations

import time

from benchmarks.common import ratio_stats
from trainables.config import TrialConfig
from trainables.trial import Trial

FIVE = (0.0, 0.25, 0.5, 0.75, 1.0)


def wise_cost(smoke: bool) -> dict:
    config = TrialConfig.from_dict(dict(model="embedded", epochs=1, batch_size=64,
                                        data_fraction=0.1 if smoke else 0.5,
                                        zeroshot_size=60 if smoke else 360, probe_size=8 if smoke else 32))
    trial = Trial(config)
    phase = trial.phases[0]
    optimizer, scheduler = trial._start_phase(phase)
    started = time.perf_counter()
    trial._train_epoch(phase, optimizer, scheduler, 1)
    epoch_s = time.perf_counter() - started
    trial.best.weights = trial.trained()
    evals, sweeps = [], []
    for _ in range(2 if smoke else 3):
        started = time.perf_counter()
        trial.evaluator.run(trial.model, config.epochs)
        trial.evaluator.test_accuracy(trial.model)
        evals.append(time.perf_counter() - started)
        started = time.perf_counter()
        trial.wise(FIVE)
        sweeps.append((time.perf_counter() - started) / len(FIVE))
    return {"wise_alpha_over_eval": ratio_stats(sweeps, evals),
            "wise_over_epoch": min(sweeps) * len(FIVE) / epoch_s,
            "wise_seconds": {"epoch": epoch_s, "eval": min(evals), "per_alpha": min(sweeps)}}

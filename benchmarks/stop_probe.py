"""What `stop_every_steps` costs: one between-epoch probe of the stop rule against one training step.

- probe_over_step: `Evaluator.probe` (attention, CKA and drift on the probe set, zero-shot on 128
  images per task) ÷ one FT optimiser step, embedded model on the demo's trial settings; with
  `stop_every_steps: N` the rule adds about probe_over_step / N to the training time.
"""

from __future__ import annotations

import time

from benchmarks.common import ratio_stats
from trainables.config import TrialConfig
from trainables.splits import normalise
from trainables.trial import Trial


def probe_cost(smoke: bool) -> dict:
    config = TrialConfig.from_dict(dict(model="embedded", epochs=1, batch_size=64,
                                        data_fraction=0.1 if smoke else 0.5,
                                        zeroshot_size=60 if smoke else 360, probe_size=8 if smoke else 32,
                                        stop_metric="retention", stop_below=50, stop_every_steps=10))
    trial = Trial(config)
    phase = trial.phases[0]
    optimizer, scheduler = trial._start_phase(phase)
    pixels, labels, _ = next(trial.task.train.batches(config.batch_size))
    x = normalise(pixels, trial.mean, trial.std)
    steps, probes = [], []
    for _ in range(3 if smoke else 7):
        started = time.perf_counter()
        trial.step(phase, optimizer, scheduler, x, labels)
        steps.append(time.perf_counter() - started)
        started = time.perf_counter()
        trial.evaluator.probe(trial.model)
        probes.append(time.perf_counter() - started)
        trial.model.train()
    return {"probe_over_step": ratio_stats(probes, steps),
            "probe_seconds": {"step": min(steps), "probe": min(probes)}}

"""Why the evaluator reads a CPU split 64 images at a time: the same accuracy pass at batch 256 ÷ at 64.

- eval_batch_ratio_1t / _2t: `Evaluator.accuracy` over the embedded validation split (512 images)
  with 256-image batches ÷ with 64-image batches, at one torch thread (a Ray trial's share of this
  machine in the demo) and at two (`driftlab trial`). Above 1: the smaller batch is faster. The
  accuracy itself must not change with the batch; the benchmark refuses to report if it does.
"""

from __future__ import annotations

import torch

from benchmarks.common import interleaved, ratio_stats
from trainables.config import TrialConfig
from trainables.trial import Trial


def eval_batch_cost(smoke: bool) -> dict:
    trial = Trial(TrialConfig.from_dict(dict(model="embedded", epochs=1, data_fraction=0.1, zeroshot_size=60,
                                             probe_size=8)))
    split = trial.task.val.subset(list(range(128))) if smoke else trial.task.val
    evaluator = trial.evaluator

    def at(batch: int):
        def measure():
            evaluator.eval_batch = batch
            return evaluator.accuracy(trial.model, split)
        return measure

    if at(256)() != at(64)():
        raise RuntimeError("eval_batch: accuracy changed with the evaluation batch")
    figures, threads = {}, torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            times = interleaved({"256": at(256), "64": at(64)}, 3 if smoke else 9)
            figures[f"eval_batch_ratio_{n}t"] = ratio_stats(times["256"], times["64"])
    finally:
        torch.set_num_threads(threads)
    return figures

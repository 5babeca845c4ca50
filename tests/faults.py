"""Faults injected from outside the product: `python -m tests.faults run SPEC ...` is `driftlab run`
with its trainable wrapped, so the sweep tests exercise retries and divergence through the real
Ray Tune and MLflow path while the product carries no fault switch.

- the trial with seed CRASH_SEED checkpoints every epoch (trials this short otherwise checkpoint
  only their last) and raises once, right after its first epoch was reported and checkpointed
  (Tune then restarts it from that checkpoint);
- the trial with seed NAN_SEED has every phase's loss turned NaN (it ends as diverged).

The wrapper is defined in `__main__`, so Ray pickles it by value and the workers need no copy
of the tests; everything it patches is patched inside the worker, for that trial only.
"""

from __future__ import annotations

import sys

CRASH_SEED, NAN_SEED = 101, 102


def faulty_trainable(config: dict, sweep) -> None:
    """driftlab's trainable, with the fault this trial's seed asks for."""
    import math
    from contextlib import ExitStack
    from unittest import mock

    from ray import tune

    import trainables.trial as trial_module
    from orchestrator import trainable
    from orchestrator.configs import trial_config
    from orchestrator.trainable import run_driftlab_trial

    seed = trial_config(config).seed
    real_epoch, real_build = trial_module.Trial._train_epoch, trial_module.build_phases

    def crash_before_epoch_2(self, phase, optimizer, scheduler, epoch):
        if epoch == 2:
            raise RuntimeError("injected fault: crash once, after epoch 1's checkpoint")
        return real_epoch(self, phase, optimizer, scheduler, epoch)

    def nan_phases(model, cfg, **kwargs):
        phases = real_build(model, cfg, **kwargs)
        for phase in phases:
            phase.loss = lambda m, x, y, boxes=None, ids=None, loss=phase.loss: (
                loss(m, x, y, boxes=boxes, ids=ids)[0] * math.nan, {})
        return phases

    with ExitStack() as patches:
        if seed == CRASH_SEED:
            patches.enter_context(mock.patch.object(trainable, "CHECKPOINT_EVERY_S", 0.0))
        if seed == CRASH_SEED and tune.get_checkpoint() is None:  # the first attempt only
            patches.enter_context(mock.patch.object(trial_module.Trial, "_train_epoch", crash_before_epoch_2))
        if seed == NAN_SEED:
            patches.enter_context(mock.patch.object(trial_module, "build_phases", nan_phases))
        run_driftlab_trial(config, sweep)


def main(argv: list[str]) -> int:
    from orchestrator import sweep
    from orchestrator.cli import main as driftlab

    sweep.run_driftlab_trial = faulty_trainable  # what `run_sweep` hands to Tune
    return driftlab(argv)


if __name__ == "__main__":
    from orchestrator import signals

    signals.exit_process(main(sys.argv[1:]))

"""Spec -> Ray Tune: param space (grid or Optuna), scheduler, resources, failures, resume.

`run_sweep` runs a validated spec on an already-initialised Ray. The same sweep name under
the same storage path resumes (`Tuner.restore`, unfinished and errored trials resumed,
completed ones kept). Progress is one line per finished trial on stderr.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass

from ray import tune

from orchestrator import signals
from orchestrator.configs import VARIANT, method_label, trial_config
from orchestrator.reconcile import outcomes, saved_states
from orchestrator.spec import Spec
from orchestrator.storage import experiment_path
from orchestrator.trainable import SweepContext, run_driftlab_trial
from trainables import keys

SMOKE = {"data_fraction": 0.25, "zeroshot_size": 200, "probe_size": 16, "lp_epochs": 1}


@dataclass
class SweepOutcome:
    results: object  # tune.ResultGrid
    trials: list  # (result, Tune trial, outcome) per trial: see reconcile.outcomes
    wall_s: float
    resumed: bool


def smoke(spec: Spec) -> Spec:
    """The same sweep, tiny: one short epoch per trial (two where LP-FT needs both phases), <= 4 samples."""
    methods = {spec.trial.get("method", "ft"), *spec.grid.get("method", []), *(v.get("method") for v in spec.variants)}
    if spec.search and "method" in spec.search.space:
        methods.update(next(iter(spec.search.space["method"].values())))
    spec.trial = {**spec.trial, **SMOKE, "epochs": 2 if "lpft" in methods else 1}
    for key in (*SMOKE, "epochs"):
        spec.grid.pop(key, None)
    if spec.search:
        spec.search.num_samples = min(spec.search.num_samples, 4)
    return spec


def param_space(spec: Spec) -> dict:
    if spec.search:
        space = dict(spec.trial)
        for key, dist in spec.search.space.items():
            kind, args = next(iter(dist.items()))
            space[key] = {"loguniform": lambda a: tune.loguniform(a[0], a[1]),
                          "uniform": lambda a: tune.uniform(a[0], a[1]),
                          "int": lambda a: tune.randint(int(a[0]), int(a[1]) + 1),
                          "choice": lambda a: tune.choice(a)}[kind](args)
        return space
    space = dict(spec.trial)
    space.update({key: tune.grid_search(values) for key, values in spec.grid.items()})
    if spec.variants:
        space[VARIANT] = tune.grid_search(spec.variants)
    return space


def tune_config(spec: Spec) -> tune.TuneConfig:
    search_alg = scheduler = None
    if spec.search:
        from ray.tune.search.optuna import OptunaSearch

        metrics, modes = list(spec.search.objectives), list(spec.search.objectives.values())
        if len(metrics) == 1:
            metrics, modes = metrics[0], modes[0]
        search_alg = OptunaSearch(metric=metrics, mode=modes, seed=spec.search.seed)
    if spec.scheduler:
        from ray.tune.schedulers import ASHAScheduler

        # One report per epoch plus epoch 0's: the longest trial makes epochs + 1 reports.
        epochs = max(config.epochs for config in spec.trial_configs())
        scheduler = ASHAScheduler(metric=spec.scheduler["metric"], mode=spec.scheduler["mode"],
                                  time_attr="training_iteration", max_t=epochs + 1,
                                  # --smoke shortens trials after validation: keep grace within max_t.
                                  grace_period=min(int(spec.scheduler["grace_period"]), epochs + 1),
                                  reduction_factor=float(spec.scheduler["reduction_factor"]))
    return tune.TuneConfig(num_samples=spec.search.num_samples if spec.search else 1, search_alg=search_alg,
                           scheduler=scheduler, reuse_actors=True,
                           max_concurrent_trials=spec.max_concurrent or None)


class Progress(tune.Callback):
    """One line per finished trial: `[done/total] name: status val/acc ... (seconds)`."""

    def __init__(self, total: int | None):
        self.total, self.done, self.started = total, 0, time.time()

    def _line(self, trial, status: str) -> None:
        self.done += 1
        r = trial.last_result or {}
        shown = [k for k in sorted(r) if k in (keys.VAL_ACC, keys.TEST_ACC)
                 or keys.is_retention(k, best=False)]
        bits = [f"{k} {r[k]:.1f}" for k in shown if isinstance(r[k], float) and math.isfinite(r[k])]
        total = self.total or "?"
        cfg = trial_config(trial.config)
        what = f"dataset={cfg.dataset} method={method_label(cfg)} lr={cfg.lr:g} seed={cfg.seed}"
        print(f"[{self.done}/{total} {time.time() - self.started:5.0f}s] {what}: "
              f"{r.get('status', status)} {'  '.join(bits)}", file=sys.stderr, flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._line(trial, "completed")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, "failed")


def resources(spec: Spec) -> dict[str, float]:
    import ray

    res = dict(spec.resources)
    if "gpu" not in res:
        # Single-GPU (or multi-GPU) machines: one GPU per trial unless the spec packs fractions.
        res["gpu"] = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    return res


def run_sweep(spec: Spec, storage: str, context: SweepContext, resume: bool) -> SweepOutcome:
    # Trials that never started have no results: Tune warns about each while reading them back.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    trainable = tune.with_resources(tune.with_parameters(run_driftlab_trial, sweep=context), resources(spec))
    path = experiment_path(storage, spec.name)
    total = spec.search.num_samples if spec.search else len(spec.configs())
    # Tune's newer console output prints a "Configuration for experiment" box and a TensorBoard hint
    # whatever `verbose` says; the classic one at verbose=0 prints nothing: our Progress lines are the output.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = time.time()
    if resume:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        run_config = tune.RunConfig(
            name=spec.name, storage_path=storage, verbose=0, callbacks=[Progress(total)],
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
        tuner = tune.Tuner(trainable, param_space=param_space(spec), tune_config=tune_config(spec),
                           run_config=run_config)
    with signals.tune_running():  # a first SIGINT/SIGTERM asks Tune to save its state and stop
        results = tuner.fit()
    saved = saved_states(results.experiment_path) if signals.received else None
    return SweepOutcome(results=results, trials=outcomes(results, saved), wall_s=time.time() - started,
                        resumed=resume)


def can_resume(storage: str, name: str) -> bool:
    return tune.Tuner.can_restore(experiment_path(storage, name))

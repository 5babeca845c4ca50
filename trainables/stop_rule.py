"""Drift-aware stopping: end a trial once a metric it reports crosses a threshold.

    rule = StopRule.from_config(config)     # None when `stop_metric` is not set
    if rule.observe(metrics): ...           # True once the threshold held `stop_patience` evaluations in a row

Config keys (flat, like every other): `stop_metric` (any metric the trial reports, or a spec
short form such as `retention`), exactly one of `stop_above` / `stop_below`, and
`stop_patience` (evaluations in a row, default 1). An evaluation that lacks the metric
(between `eval_every` evaluations) neither counts nor resets the streak. With `stop_every_steps: N`
the rule reads instead a cheap probe every N optimiser steps (`Evaluator.probe`: attention, CKA
and drift on the probe set, zero-shot on 128 images per task), and may stop mid-epoch.

When the rule fires the trial ends with status `stopped_drift`; its best-validation epoch is
chosen among the epochs it ran, the stopping epoch included (a rule that fires at epoch 1
still leaves a selected model). It also reports `stop/epoch` and `stop/compute_frac`, the
fraction of the configured optimiser steps that ran (1 − compute saved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainables import keys
from trainables.errors import ConfigError, require

STATUS = "stopped_drift"


def check(config) -> None:
    """The stop keys of a trial config, one clear line on the first problem."""
    thresholds = [k for k in ("stop_above", "stop_below") if getattr(config, k) is not None]
    require("stop_every_steps", config.stop_every_steps >= 0, "an integer >= 0 (0: check once per evaluation)")
    if not config.stop_metric:
        for key in [*thresholds, *(["stop_every_steps"] if config.stop_every_steps else [])]:
            raise ConfigError(f"{key}: needs stop_metric (the metric the rule reads)")
        return
    if len(thresholds) != 1:
        raise ConfigError(f"stop_above: a stop rule needs exactly one of stop_above, stop_below "
                          f"(got {'both' if thresholds else 'neither'})")
    require("stop_patience", config.stop_patience >= 1, "an integer >= 1")
    key = metric_key(config)
    if key.startswith(keys.BEST) or not _reported(key, config):
        raise ConfigError(f"stop_metric: {config.stop_metric!r} is not a metric this trial reports each evaluation; "
                          "give one it does, e.g. drift/embedding, drift/weight_rel, repr/cka/mean, "
                          "attn/delta_entropy_pct, val/acc, " + ", ".join(
                              keys.retention(keys.task_segment(t)) for t in config.zero_shot))
    if config.stop_every_steps and not _probed(key):
        raise ConfigError(f"stop_every_steps: the between-epoch probe does not measure {key}; it measures attention, "
                          "repr/cka, drift/weight_rel, drift/embedding and zero-shot metrics")


def _probed(key: str) -> bool:
    """Whether the between-epoch probe (`Evaluator.probe`) measures `key`."""
    parsed = keys.parse(key)
    return parsed is not None and (parsed.kind in ("attn", "attn_delta", "cka", "zeroshot")
                                   or key in (keys.WEIGHT_DRIFT, keys.EMBEDDING_DRIFT))


def _reported(key: str, config) -> bool:
    from trainables.evaluate import reported_metric  # torch-heavy: only when a rule is set

    return reported_metric(key, config) and key not in (keys.TEST_ACC, keys.TRAIN_S)


def metric_key(config) -> str:
    """`stop_metric` as a key (a short form such as `retention` resolved to the first zero-shot task)."""
    try:
        return keys.resolve(config.stop_metric, [keys.task_segment(t) for t in config.zero_shot])
    except ValueError as err:
        raise ConfigError(f"stop_metric: {err}") from None


@dataclass
class StopRule:
    key: str
    threshold: float
    above: bool  # fire when value > threshold (else when value < threshold)
    patience: int = 1
    streak: int = 0  # evaluations in a row past the threshold so far

    @classmethod
    def from_config(cls, config) -> "StopRule | None":
        if not config.stop_metric:
            return None
        above = config.stop_above is not None
        return cls(metric_key(config), config.stop_above if above else config.stop_below, above,
                   config.stop_patience)

    def observe(self, metrics: dict) -> bool:
        """Count this evaluation; True when the rule fires. A NaN value counts as past the threshold
        (a metric that cannot be measured any more is no reason to keep training)."""
        value = metrics.get(self.key)
        if value is None:
            return False
        past = math.isnan(value) or (value > self.threshold if self.above else value < self.threshold)
        self.streak = self.streak + 1 if past else 0
        return self.streak >= self.patience

    def describe(self) -> str:
        return f"{self.key} {'>' if self.above else '<'} {self.threshold:g} for {self.patience} evaluation(s)"

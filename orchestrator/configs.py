"""Tune's view of a trial config -> the trial's own `TrialConfig`: one function, used everywhere.

A Tune config is the param space's sample: trial keys, plus a grid `variant` (a mapping of
trial keys) when the spec has variants. The trainable, the progress lines, the summary, the
Pareto front and `driftlab sync` all read configs through `trial_config`, so trial defaults
are applied in one place (TrialConfig's own).
"""

from __future__ import annotations

from trainables.config import TrialConfig
from trainables.methods import active_regularisers

VARIANT = "variant"  # the param-space key holding a spec's `variants:` grid


def trial_config(tune_config: dict) -> TrialConfig:
    """The validated trial config a Tune config stands for (a grid variant merged in)."""
    flat = {k: v for k, v in tune_config.items() if k != VARIANT}
    flat.update(tune_config.get(VARIANT) or {})
    return TrialConfig.from_dict(flat)


def method_label(config: TrialConfig) -> str:
    """The method arm: `lora`, or `ft+gta0.5` with each active regulariser and its λ."""
    return config.method + "".join(f"+{name}{getattr(config, name + '_lambda'):g}"
                                   for name in active_regularisers(config))

"""Fine-tuning methods and regularisers: one file each, one registry each.

A method (a module with `prepare(model, config) -> [Phase]`) may wrap the image tower (LoRA,
adapters) and returns its phases: which parameters train, at what learning rate, for how many
epochs. A regulariser (a module with `penalty(config, num_layers) -> Penalty`) is an extra loss
term composable with any method, switched on by its `<name>_lambda` > 0. Both declare the
config keys they own (`OPTIONS`) and check them (`check(config)`, asked by the trial config).
`build_phases` is where every such decision is made; the trial loop only ever sees phases.
"""

from __future__ import annotations

from types import ModuleType

from torch import nn

from trainables.methods import adapter, ft, gta, lora, lp, lpft
from trainables.methods.phase import Phase
from trainables.methods.regularise import SourceTower, regularised
from trainables.models import vision_layers

METHODS: dict[str, ModuleType] = {
    "ft": ft,
    "lp": lp,
    "lpft": lpft,
    "lora": lora,
    "adapter": adapter,
}

REGULARISERS: dict[str, ModuleType] = {
    "gta": gta,
}


def active_regularisers(config) -> list[str]:
    """Names of the regularisers whose `<name>_lambda` is > 0."""
    return [name for name in REGULARISERS if getattr(config, f"{name}_lambda") > 0]


def build_phases(model: nn.Module, config) -> list[Phase]:
    """Apply config.method to the (still pretrained) model; add the active regularisers to tower-tuning phases.

    The regularisers' frozen source copy is taken before the method runs: LoRA and adapters
    rewrite the tower's modules in place, and the source must stay the pretrained tower.
    """
    names = active_regularisers(config)
    num_layers = len(vision_layers(model))
    penalties = {name: REGULARISERS[name].penalty(config, num_layers) for name in names}
    source = SourceTower(model.clip_model().vision_model) if penalties else None
    phases = METHODS[config.method].prepare(model, config)
    for phase in phases:
        if penalties and phase.tunes_tower:
            phase.loss = regularised(phase.loss, penalties, source)
    return phases


__all__ = ["METHODS", "REGULARISERS", "Phase", "active_regularisers", "build_phases"]

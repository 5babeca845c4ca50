"""Fine-tuning methods and regularisers: one file each, one registry each.

A method (a module with `prepare(model, config) -> [Phase]`) may wrap the image tower (LoRA,
adapters) and returns its phases: which parameters train, at what learning rate, for how many
epochs. A regulariser (a module with `penalty(config, setup) -> Penalty`) is an extra loss
term composable with any method, switched on by its `<name>_lambda` > 0; those that read the
frozen pretrained tower share one copy of it (a module that does not sets `USES_SOURCE = False`).
Both declare the config keys they own (`OPTIONS`) and check them (`check(config)`, asked by the
trial config).
`build_phases` is where every such decision is made; the trial loop only ever sees phases.
"""

from __future__ import annotations

from types import ModuleType

from torch import nn

from trainables.methods import (adapter, apr, bitfit, box, dora, dwconv, entropy_floor, ft, gta, ia3, last_block,
                                ln_tuning, lora, lp, lpft, vera)
from trainables.methods.phase import Phase
from trainables.methods.regularise import Setup, SourceTower, regularised
from trainables.methods.source_cache import SourceLogitCache
from trainables.models import vision_layers

METHODS: dict[str, ModuleType] = {
    "ft": ft,
    "lp": lp,
    "lpft": lpft,
    "lora": lora,
    "adapter": adapter,
    "last_block": last_block,
    "dwconv": dwconv,
    "bitfit": bitfit,
    "dora": dora,
    "vera": vera,
    "ia3": ia3,
    "ln_tuning": ln_tuning,
}

REGULARISERS: dict[str, ModuleType] = {
    "gta": gta,
    "apr": apr,
    "entropy_floor": entropy_floor,
    "box": box,
}


def active_regularisers(config) -> list[str]:
    """Names of the regularisers whose `<name>_lambda` is > 0."""
    return [name for name in REGULARISERS if getattr(config, f"{name}_lambda") > 0]


def build_phases(model: nn.Module, config, has_boxes: bool = False) -> list[Phase]:
    """Apply config.method to the (still pretrained) model; add the active regularisers to tower-tuning phases.

    `has_boxes`: whether the training data carries object boxes (the box regulariser needs them).
    The regularisers' frozen source copy is taken before the method runs: LoRA and adapters
    rewrite the tower's modules in place, and the source must stay the pretrained tower.
    """
    vision = model.clip_model().config.vision_config
    grid = vision.image_size // vision.patch_size
    setup = Setup(len(vision_layers(model)), (grid, grid), vision.patch_size, has_boxes)
    names = active_regularisers(config)
    penalties = {name: REGULARISERS[name].penalty(config, setup) for name in names}
    uses_source = any(getattr(REGULARISERS[name], "USES_SOURCE", True) for name in names)
    source = SourceTower(model.clip_model().vision_model) if uses_source else None
    # One per trial: every phase regularises towards the same source, on the same training images.
    cache = SourceLogitCache(config.source_cache_mib) if source is not None else None
    phases = METHODS[config.method].prepare(model, config)
    for phase in phases:
        if penalties and phase.tunes_tower:
            phase.loss = regularised(phase.loss, penalties, source, cache)
    return phases


__all__ = ["METHODS", "REGULARISERS", "Phase", "active_regularisers", "build_phases"]

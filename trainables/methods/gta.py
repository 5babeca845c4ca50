"""GTA, Guided Transfer of spatial Attention: keep the tuned tower's [CLS] attention logits near the source's.

penalty = λ · mean_{layers, batch, heads} ‖z_src − z_tgt‖²₂, where z is the [CLS] query's
pre-softmax logit vector over the patch tokens of a layer, z_src comes from a frozen copy
of the pretrained image tower and z_tgt from the model being tuned, in the same forward
pass that computes the task loss. Logits, not probabilities: the softmax saturates and would
hide drift in the tails. Composes with any method as an extra loss term (`gta_lambda` > 0).
"""

from __future__ import annotations

import torch

from trainables.errors import ConfigError, require
from trainables.methods.regularise import Penalty, Setup, StepAttention

OPTIONS = ("gta_lambda", "gta_layers")


def check(config) -> None:
    require("gta_lambda", config.gta_lambda >= 0, "a number >= 0")
    require("gta_layers", all(i >= 0 for i in config.gta_layers), "layer indices >= 0 (empty = all layers)")


def penalty(config, setup: Setup) -> Penalty:
    """λ · mean ‖z_src − z_tgt‖² over `gta_layers` (empty = every layer of the tower)."""
    num_layers = setup.num_layers
    layers = sorted(set(config.gta_layers)) or None
    bad = [i for i in layers or [] if i >= num_layers]
    if bad:
        raise ConfigError(f"gta_layers: {bad} out of range; the image tower has {num_layers} layers "
                          f"(0..{num_layers - 1})")
    lam = config.gta_lambda

    def gta(step: StepAttention) -> torch.Tensor:
        return lam * (step.tuned(layers) - step.source(layers)).pow(2).sum(-1).mean()

    return gta

"""Entropy floor: keep each head's [CLS]->patch attention from collapsing below a share of its pretrained entropy.

penalty = λ · mean_{layers, batch, heads} relu(ρ · H(p_source) − H(p_tuned)),
H(p) = −Σ_n p_n ln p_n in nats over the patch tokens (softmax over the [CLS] query's patch
logits, as the attention metrics define it), p_source from the frozen pretrained tower on the
same pixels, ρ = `entropy_floor_ratio` (default 0.7), every layer of the image tower. The
hinge is one-sided: attention may sharpen freely down to the floor and broaden at no cost; only
a collapse past ρ·H_source, the failure mode attention-drift studies report, is penalised.
With ρ < 1 the penalty is exactly zero at the start of tuning.
"""

from __future__ import annotations

import torch

from trainables.errors import require
from trainables.methods.regularise import Penalty, Setup, StepAttention

OPTIONS = ("entropy_floor_lambda", "entropy_floor_ratio")


def check(config) -> None:
    require("entropy_floor_lambda", config.entropy_floor_lambda >= 0, "a number >= 0")
    require("entropy_floor_ratio", config.entropy_floor_ratio > 0, "a number > 0 (the share of the source entropy)")


def patch_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) in nats over the last dim: [..., N] -> [...]."""
    log_p = torch.log_softmax(logits, -1)
    return -(log_p.exp() * log_p).sum(-1)


def penalty(config, setup: Setup) -> Penalty:
    lam, ratio = config.entropy_floor_lambda, config.entropy_floor_ratio

    def entropy_floor(step: StepAttention) -> torch.Tensor:
        return lam * torch.relu(ratio * patch_entropy(step.source()) - patch_entropy(step.tuned())).mean()

    return entropy_floor

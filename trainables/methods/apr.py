"""APR, attention-preservation regulariser: keep the tuned [CLS]->patch distribution near the source's.

penalty = λ · mean_{layers, batch, heads} KL(p_tuned ‖ p_source),
KL(p ‖ q) = Σ_n p_n (ln p_n − ln q_n), where p is the [CLS] query's attention over the patch
tokens (softmax over the patch logits: the CLS column dropped and the row renormalised, as the
attention metrics define it), p_source from the frozen pretrained tower on the same pixels, every
layer of the image tower. Tuned first: the divergence is large where the tuned model puts mass
the source did not. It is GTA's probability-space counterpart: GTA's squared logit distance also
counts shifts that the softmax flattens, APR only what changes the attention itself.
"""

from __future__ import annotations

import torch

from trainables.errors import require
from trainables.methods.regularise import Penalty, Setup, StepAttention

OPTIONS = ("apr_lambda",)


def check(config) -> None:
    require("apr_lambda", config.apr_lambda >= 0, "a number >= 0")


def kl_patch(tuned_logits: torch.Tensor, source_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(tuned) ‖ softmax(source)) over the last dim: [..., N] -> [...]."""
    log_p, log_q = torch.log_softmax(tuned_logits, -1), torch.log_softmax(source_logits, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def penalty(config, setup: Setup) -> Penalty:
    lam = config.apr_lambda

    def apr(step: StepAttention) -> torch.Tensor:
        return lam * kl_patch(step.tuned(), step.source()).mean()

    return apr

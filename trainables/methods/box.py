"""Attention supervision from object boxes: pull the last layer's [CLS]->patch attention onto the boxed object.

penalty = λ · mean_{batch, patches} ℓ(p_n, t_n), where
  p = the last image-tower layer's [CLS] attention over the patch tokens, heads averaged (the
      distribution `attn/box_alignment` reads, so this arm optimises alignment directly);
  t = the box target, renormalised to sum to 1 over the patches:
      `box_target: hard`  t ∝ 1 on patches whose square overlaps the box with positive area, 0 elsewhere;
      `box_target: soft`  t ∝ the share of each patch's area the box covers (a soft-IoU target);
  ℓ = `box_loss: bce`  −[t ln p + (1 − t) ln(1 − p)]   (binary cross-entropy per patch, the default)
      `box_loss: mse`  (p − t)².
Supervising a model's attention maps with annotated regions follows GAIN (Li et al., 2018,
"Tell Me Where to Look"); here the regions are the dataset's boxes. It needs box-annotated
data (the embedded world has boxes; real datasets may supply a box column) and, since the boxes
are in the cropped pixel frame, no geometric augmentation (box-annotated tasks train without it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.errors import ConfigError, one_of, require
from trainables.methods.regularise import Penalty, Setup, StepAttention
from trainables.metrics import box_patch_mask, box_patch_overlap

OPTIONS = ("box_lambda", "box_target", "box_loss")
TARGETS = ("hard", "soft")
LOSSES = ("bce", "mse")
USES_SOURCE = False  # supervised by the boxes, not by the pretrained tower


def check(config) -> None:
    require("box_lambda", config.box_lambda >= 0, "a number >= 0")
    one_of("box_target", config.box_target, TARGETS)
    one_of("box_loss", config.box_loss, LOSSES)


def box_target(boxes: torch.Tensor, grid: tuple[int, int], patch_size: int, kind: str) -> torch.Tensor:
    """t [B, N]: the hard or soft box target over the patches, each row summing to 1 (0 for a box off the grid)."""
    weight = box_patch_mask(boxes, grid, patch_size).double() if kind == "hard" else box_patch_overlap(
        boxes, grid, patch_size)
    total = weight.sum(-1, keepdim=True)
    return (weight / torch.where(total > 0, total, torch.ones_like(total))).float()


def box_loss(p: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """mean over batch and patches of BCE(p, t) or (p − t)²; p [B, N] attention, t [B, N] target."""
    if kind == "mse":
        return (p - target).pow(2).mean()
    # p is a softmax output, so in (0, 1); the clamp only guards float rounding at the ends.
    return F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), target)


def penalty(config, setup: Setup) -> Penalty:
    if not setup.has_boxes:
        raise ConfigError(f"box_lambda: the dataset {config.dataset!r} has no object boxes; use a box-annotated "
                          "dataset (embedded/...) or box_lambda 0")
    lam, last = config.box_lambda, [setup.num_layers - 1]

    def box(step: StepAttention) -> torch.Tensor:
        p = torch.softmax(step.tuned(last)[0], -1).mean(1)  # [B, N], heads averaged
        target = box_target(step.boxes, setup.grid, setup.patch_size, config.box_target).to(p.device)
        return lam * box_loss(p, target, config.box_loss)

    return box

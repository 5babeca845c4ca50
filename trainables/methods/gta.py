"""GTA, Guided Transfer of spatial Attention: keep the tuned tower's [CLS] attention logits near the source's.

penalty = λ · mean_{layers, batch, heads} ‖z_src − z_tgt‖²₂, where z is the [CLS] query's
pre-softmax logit vector over the patch tokens of a layer, z_src comes from a frozen copy
of the pretrained image tower and z_tgt from the model being tuned, in the same forward
pass that computes the task loss. Logits, not probabilities: the softmax saturates and would
hide drift in the tails. Composes with any method as an extra loss term.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.attention import AttentionCapture


class GTAPenalty:
    """Wraps a phase's loss function with the GTA penalty against a frozen source tower."""

    def __init__(self, source: nn.Module, lam: float, layers: list[int]):
        if source is None:
            raise ValueError("GTA needs the frozen source tower")
        self.source = source.eval().requires_grad_(False)
        self.lam = lam
        self.layers = layers or None
        self._source_capture = AttentionCapture(self.source, self.layers)
        self._captures: dict[int, AttentionCapture] = {}

    def source_logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """[L, B, H, N] CLS->patch logits of the frozen pretrained tower."""
        with torch.no_grad(), self._source_capture as cap:
            self.source.vision_model(pixel_values=pixels)
            return torch.stack(cap.cls_logits())[..., 1:]

    def penalty(self, tuned: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return self.lam * (tuned - source).pow(2).sum(-1).mean()

    def wrap(self, base_loss):
        def loss(model, pixels, labels):
            capture = self._captures.get(id(model))
            if capture is None:
                capture = self._captures[id(model)] = AttentionCapture(model, self.layers)
            with capture:
                task_loss, logs = base_loss(model, pixels, labels)
            tuned = torch.stack(capture.cls_logits())[..., 1:]
            pen = self.penalty(tuned, self.source_logits(pixels))
            return task_loss + pen, {**logs, "train/gta_penalty": pen.detach()}
        return loss


class SourceTower(nn.Module):
    """A frozen copy of the pretrained image tower, named like CLIPModel's (`vision_model.…`)."""

    def __init__(self, vision_model: nn.Module):
        super().__init__()
        import copy
        self.vision_model = copy.deepcopy(vision_model).eval().requires_grad_(False)

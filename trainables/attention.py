"""Attention capture on a CLIP image tower, without giving up SDPA.

Under transformers 5.x the default SDPA attention returns no weights. Instead of switching
to eager attention, `AttentionCapture` forward-hooks each layer's `q_proj` and `k_proj`
and recomputes what is asked for from their outputs:

- `cls_logits()`   the [CLS] query's pre-softmax logits over all tokens, [B, H, T] per layer
                   (q_cls · kᵀ · scale): what GTA regularises; costs O(T) per head.
- `probabilities()` full softmax(q kᵀ · scale), [B, H, T, T] per layer: only rollout and
                   mean attention distance need it.

Hooking the projection modules means peft's LoRA deltas (q_proj is then a LoRA wrapper) and
the effect of earlier adapters are included, and gradients flow when captured in training.
The context manager removes every hook on exit, leaving the model as it found it.

    with AttentionCapture(model) as cap:
        model(pixels)
    rows = cap.cls_logits()
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.models import vision_layers


class AttentionCapture:
    """Record q/k projections of the image tower's attention layers during forward passes."""

    def __init__(self, model: nn.Module, layers: list[int] | None = None):
        attn = [layer.self_attn for layer in vision_layers(model)]
        if not attn:
            raise ValueError("AttentionCapture: the model has no vision_model.encoder.layers.N.self_attn modules")
        self.layer_ids = list(range(len(attn))) if not layers else sorted(set(layers))
        bad = [i for i in self.layer_ids if i >= len(attn)]
        if bad:
            raise ValueError(f"gta_layers: {bad} out of range; the image tower has {len(attn)} layers (0..{len(attn) - 1})")
        self._attn = [attn[i] for i in self.layer_ids]
        self._q: list[torch.Tensor | None] = [None] * len(self._attn)
        self._k: list[torch.Tensor | None] = [None] * len(self._attn)
        self._handles: list = []

    def __enter__(self) -> "AttentionCapture":
        for slot, module in enumerate(self._attn):
            self._handles.append(module.q_proj.register_forward_hook(self._store(self._q, slot)))
            self._handles.append(module.k_proj.register_forward_hook(self._store(self._k, slot)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _store(target: list, slot: int):
        def hook(_module, _inputs, output):
            target[slot] = output
        return hook

    def _heads(self, slot: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        module, q, k = self._attn[slot], self._q[slot], self._k[slot]
        if q is None or k is None:
            raise RuntimeError("AttentionCapture: no forward pass was recorded inside the context")
        b, t, _ = q.shape
        q = q.view(b, t, -1, module.head_dim).transpose(1, 2)
        k = k.view(b, t, -1, module.head_dim).transpose(1, 2)
        return q, k, module.scale

    def cls_logits(self, layers: list[int] | None = None) -> list[torch.Tensor]:
        """Pre-softmax [CLS]-query logits over every token (CLS first), [B, H, T] per captured layer
        (or per layer of `layers`, a subset of the captured ones)."""
        out = []
        for slot in range(len(self._attn)) if layers is None else [self.layer_ids.index(i) for i in layers]:
            q, k, scale = self._heads(slot)
            out.append(torch.einsum("bhd,bhtd->bht", q[:, :, 0].float(), k.float()) * scale)
        return out

    def probabilities(self) -> list[torch.Tensor]:
        """Full attention probabilities softmax(q kᵀ · scale), [B, H, T, T] per captured layer."""
        out = []
        for slot in range(len(self._attn)):
            q, k, scale = self._heads(slot)
            out.append(torch.softmax(q.float() @ k.float().transpose(-1, -2) * scale, dim=-1))
        return out

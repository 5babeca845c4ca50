"""Depth-wise convolution shortcut beside image-tower blocks, plus the head (after Convpass, Jie & Deng 2022,
"Convolutional Bypasses Are Better Vision Transformer Adapters").

For each chosen block with input h = [h_cls; h_patches]:  out = Block(h) + [0; DWConv(h_patches)],
where DWConv is a k×k depth-wise convolution (one filter per channel, `dwconv_kernel` k, zero
padding) over the patches laid out on their grid; [CLS] gets nothing. Weights and bias start at
zero, so every shortcut starts as the identity and the model starts exactly pretrained. It
gives the tower a local inductive bias, which helps on small data, at D·(k² + 1) parameters a block.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainables.errors import ConfigError, require
from trainables.methods.phase import Phase
from trainables.models import vision_layers

OPTIONS = ("dwconv_layers", "dwconv_kernel")


def check(config) -> None:
    require("dwconv_kernel", config.dwconv_kernel >= 1 and config.dwconv_kernel % 2 == 1, "an odd integer >= 1")
    require("dwconv_layers", all(i >= 0 for i in config.dwconv_layers), "layer indices >= 0 (empty = all layers)")


class DepthwiseShortcut(nn.Module):
    """[B, 1 + N, D] -> [B, 1 + N, D]: a zero-initialised depth-wise conv over the N patch tokens' grid, 0 at [CLS]."""

    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        side = math.isqrt(t - 1)  # CLIP images are square: N = side²
        grid = h[:, 1:].transpose(1, 2).reshape(b, d, side, side)
        patches = self.conv(grid).flatten(2).transpose(1, 2)
        return torch.cat([torch.zeros_like(h[:, :1]), patches], 1)


def _add_shortcut(layer: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
    hidden = args[0] if args else kwargs["hidden_states"]
    return output + layer.dwconv(hidden)


def prepare(model, config) -> list[Phase]:
    layers = vision_layers(model.clip)
    chosen = sorted(set(config.dwconv_layers)) or list(range(len(layers)))
    bad = [i for i in chosen if i >= len(layers)]
    if bad:
        raise ConfigError(f"dwconv_layers: {bad} out of range; the image tower has {len(layers)} layers "
                          f"(0..{len(layers) - 1})")
    params = []
    for i in chosen:
        layer = layers[i]
        # A submodule of the block plus a forward hook, not a wrapper: the block keeps its name and its
        # self_attn, which attention capture and the drift metrics find by name. Prepended, so that
        # transformers' own hook recording `hidden_states` (CKA reads them) sees the block's full output.
        layer.dwconv = DepthwiseShortcut(layer.embed_dim, config.dwconv_kernel)
        layer.register_forward_hook(_add_shortcut, with_kwargs=True, prepend=True)
        params += list(layer.dwconv.parameters())
    params += list(model.head.parameters())
    return [Phase("dwconv", params, config.lr, config.epochs, tunes_tower=True, parts=params)]

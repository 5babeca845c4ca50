"""Bottleneck adapters (Houlsby et al. 2019), written in-house, plus the head.

After a sublayer's output projection (attention's out_proj, the MLP's fc2) an adapter adds
up(act(down(h))) to h. `up` starts at zero, so every adapter starts as the identity and the
model starts exactly pretrained. peft has no bottleneck adapters, and AdapterHub's package
pins transformers 4.x, hence this ~50-line module.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from trainables.errors import one_of, require
from trainables.methods.phase import Phase
from trainables.models import vision_layers

# Accepted `adapter_sites`: the (sublayer, output projection) each names in every image-tower layer.
SITES = {"attn": ("self_attn", "out_proj"), "mlp": ("mlp", "fc2")}
OPTIONS = ("adapter_dim", "adapter_sites")


def check(config) -> None:
    require("adapter_dim", config.adapter_dim >= 1, "an integer >= 1")
    one_of("adapter_sites", config.adapter_sites, tuple(SITES))
    require("adapter_sites", bool(config.adapter_sites), f"a non-empty list of {', '.join(SITES)}")


class Bottleneck(nn.Module):
    """h -> h + up(GELU(down(h))), with `up` zero-initialised (identity at start)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.enabled = True

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h))) if self.enabled else h


class WithAdapter(nn.Module):
    """A linear layer followed by a bottleneck adapter."""

    def __init__(self, base: nn.Linear, hidden: int):
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(base.out_features, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(x))


def insert_adapters(model: nn.Module, hidden: int, sites: list[str]) -> list[nn.Parameter]:
    """Wrap the chosen output projections of every image-tower layer; return the adapters' parameters."""
    params = []
    for layer in vision_layers(model):
        for site in sites:
            parent_name, child_name = SITES[site]
            parent = getattr(layer, parent_name)
            wrapped = WithAdapter(getattr(parent, child_name), hidden)
            setattr(parent, child_name, wrapped)
            params += list(wrapped.adapter.parameters())
    return params


@contextmanager
def adapters_disabled(model: nn.Module):
    """Run the model as if no adapter were inserted (each adapter passes its input through)."""
    adapters = [m for m in model.modules() if isinstance(m, Bottleneck)]
    for a in adapters:
        a.enabled = False
    try:
        yield model
    finally:
        for a in adapters:
            a.enabled = True


def prepare(model, config) -> list[Phase]:
    params = insert_adapters(model.clip, config.adapter_dim, config.adapter_sites)
    return [Phase("adapter", params + list(model.head.parameters()), config.lr, config.epochs, tunes_tower=True)]

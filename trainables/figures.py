"""Trial figures: CLS-attention heatmaps before/after on probe images, entropy by layer, per-layer table.

Written into a trial's output directory (the orchestrator logs them to MLflow). Agg backend:
no display needed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def layer_groups(num_layers: int) -> dict[str, int]:
    """Representative layers: early, middle, last."""
    return {"early": 0, "middle": num_layers // 2, "last": num_layers - 1}


def attention_heatmaps(images: torch.Tensor, before: torch.Tensor, after: torch.Tensor, grid: tuple[int, int],
                       path: Path, count: int = 4) -> Path:
    """images uint8 [B, 3, H, W]; before/after head-averaged CLS->patch maps [B, L, N]."""
    plt = _pyplot()
    groups = layer_groups(before.shape[1])
    count = min(count, images.shape[0])
    fig, axes = plt.subplots(count, 1 + 2 * len(groups), figsize=(2 * (1 + 2 * len(groups)), 2 * count),
                             squeeze=False)
    for row in range(count):
        img = images[row].permute(1, 2, 0).numpy()
        h, w = img.shape[:2]
        axes[row, 0].imshow(img)
        axes[row, 0].set_title("probe image" if row == 0 else "")
        for g, (name, layer) in enumerate(groups.items()):
            for s, (label, maps) in enumerate((("before", before), ("after", after))):
                ax = axes[row, 1 + 2 * g + s]
                heat = maps[row, layer].reshape(grid).numpy()
                ax.imshow(img)
                ax.imshow(heat, cmap="inferno", alpha=0.6, extent=(0, w, h, 0), interpolation="nearest")
                if row == 0:
                    ax.set_title(f"{name} (L{layer}) {label}", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.suptitle("[CLS] attention over patches, head-averaged: pretrained (before) vs tuned (after)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def entropy_by_layer(before: list[float], after: list[float], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    layers = np.arange(len(before))
    ax.plot(layers, before, "o-", label="pretrained")
    ax.plot(layers, after, "s-", label="tuned")
    ax.set_xlabel("layer")
    ax.set_ylabel("CLS->patch entropy (nats)")
    ax.set_xticks(layers)
    ax.legend()
    ax.set_title("Attention entropy by layer")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def layer_table(before: dict[str, list[float]], after: dict[str, list[float]], path: Path) -> Path:
    """CSV with one row per (metric, layer): pretrained value, tuned value."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", "layer", "pretrained", "tuned"])
        for metric, values in before.items():
            for layer, value in enumerate(values):
                tuned = after.get(metric, [float("nan")] * len(values))[layer]
                writer.writerow([metric, layer if metric != "rollout_entropy" else "all", value, tuned])
    return path

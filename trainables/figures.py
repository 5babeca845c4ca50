"""Trial figures: CLS-attention heatmaps before/after on probe images, entropy by layer, per-layer table.

`write_figures(snapshot, out_dir)` writes all three from an `AttentionSnapshot` (what the
evaluator saw on the probe set, pretrained vs latest) into a trial's output directory (the
orchestrator logs them to MLflow). Agg backend: no display needed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class AttentionSnapshot:
    """The probe set's attention, pretrained (before) and at the latest evaluation (after)."""

    images: torch.Tensor  # uint8 [B, 3, H, W] probe images
    grid: tuple[int, int]  # patch rows, cols
    before_maps: torch.Tensor  # head-averaged CLS->patch maps [B, L, N]
    after_maps: torch.Tensor
    before: dict[str, list[float]]  # attention metric -> per-layer values (one value: whole network)
    after: dict[str, list[float]]
    whole_network: frozenset[str] = frozenset()  # metrics measured once for the network, not per layer


def write_figures(snapshot: AttentionSnapshot, out_dir: Path) -> list[Path]:
    """Heatmaps, entropy by layer and the per-layer table of `snapshot`; their paths."""
    s = snapshot
    return [
        attention_heatmaps(s.images, s.before_maps, s.after_maps, s.grid, out_dir / "attention_heatmaps.png"),
        entropy_by_layer(s.before["entropy"], s.after["entropy"], out_dir / "entropy_by_layer.png"),
        layer_table(s.before, s.after, out_dir / "layer_metrics.csv", s.whole_network),
    ]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def layer_groups(num_layers: int) -> dict[str, int]:
    """Representative layers: early, middle, last."""
    return {"early": 0, "middle": num_layers // 2, "last": num_layers - 1}


def _overlay(image: np.ndarray, heat: np.ndarray, cmap) -> np.ndarray:
    """An [H, W, 3] float image with a patch-grid heat map blended over it (heat scaled to its max)."""
    h, w = image.shape[:2]
    rows, cols = heat.shape
    cells = np.kron(heat / max(float(heat.max()), 1e-12), np.ones((h // rows, w // cols)))
    return 0.4 * image + 0.6 * cmap(cells)[..., :3]


def attention_heatmaps(images: torch.Tensor, before: torch.Tensor, after: torch.Tensor, grid: tuple[int, int],
                       path: Path, count: int = 4) -> Path:
    """images uint8 [B, 3, H, W]; before/after head-averaged CLS->patch maps [B, L, N].

    Drawn as one mosaic in a single axes (rows: probe images; columns: the image, then early /
    middle / last layer before and after): one imshow instead of dozens of subplots keeps this
    well under a tenth of a second per trial.
    """
    plt = _pyplot()
    groups = layer_groups(before.shape[1])
    count = min(count, images.shape[0])
    cmap = plt.get_cmap("inferno")
    pad = 2
    tiles = []
    for row in range(count):
        img = images[row].permute(1, 2, 0).numpy().astype(np.float64) / 255.0
        cells = [img] + [_overlay(img, maps[row, layer].reshape(grid).numpy(), cmap)
                         for layer in groups.values() for maps in (before, after)]
        tiles.append(np.concatenate([np.pad(c, ((pad, pad), (pad, pad), (0, 0)), constant_values=1.0)
                                     for c in cells], axis=1))
    mosaic = np.concatenate(tiles, axis=0)
    tile_w = mosaic.shape[1] / (1 + 2 * len(groups))
    fig, ax = plt.subplots(figsize=(1.3 * (1 + 2 * len(groups)), 1.3 * count + 0.6))
    ax.imshow(mosaic, interpolation="nearest")
    labels = ["image"] + [f"{name} L{layer} {when}" for name, layer in groups.items() for when in ("before", "after")]
    for i, label in enumerate(labels):
        ax.text((i + 0.5) * tile_w, -3, label, ha="center", va="bottom", fontsize=7)
    ax.axis("off")
    ax.set_title("[CLS] attention over patches, head-averaged: pretrained (before) vs tuned (after)", fontsize=8,
                 pad=14)
    fig.savefig(path, dpi=100, bbox_inches="tight")
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


def layer_table(before: dict[str, list[float]], after: dict[str, list[float]], path: Path,
                whole_network: frozenset[str] = frozenset()) -> Path:
    """CSV with one row per (metric, layer): pretrained value, tuned value (layer `all` for whole-network ones)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", "layer", "pretrained", "tuned"])
        for metric, values in before.items():
            for layer, value in enumerate(values):
                tuned = after.get(metric, [float("nan")] * len(values))[layer]
                writer.writerow([metric, "all" if metric in whole_network else layer, value, tuned])
    return path

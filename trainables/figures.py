"""Trial figures: CLS-attention heatmaps before/after on probe images, entropy by layer, per-layer table.

`write_figures(snapshot, out_dir)` writes all three from an `AttentionSnapshot` (what the
evaluator saw on the probe set, pretrained vs latest) into a trial's output directory (the
orchestrator logs them to MLflow). No display and no pyplot state: the heatmaps are composed
as an array and written by Pillow, the line plot is a bare matplotlib Figure.
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


def layer_groups(num_layers: int) -> dict[str, int]:
    """Representative layers: early, middle, last."""
    return {"early": 0, "middle": num_layers // 2, "last": num_layers - 1}


def _colours(name: str = "inferno") -> np.ndarray:
    """A matplotlib colour map as a [256, 3] float lookup table (only the map: no figure machinery)."""
    from matplotlib import colormaps
    return colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3].astype(np.float32)


def _overlay(image: np.ndarray, heat: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """An [H, W, 3] float image with a patch-grid heat map blended over it (heat scaled to its max).
    Colours are looked up per patch, then each patch is spread over its pixels."""
    h, w = image.shape[:2]
    rows, cols = heat.shape
    index = np.rint(255 * heat / max(float(heat.max()), 1e-12)).astype(np.int64).clip(0, 255)
    colour = lut[index].repeat(h // rows, axis=0).repeat(w // cols, axis=1)
    return 0.4 * image + 0.6 * colour


def attention_heatmaps(images: torch.Tensor, before: torch.Tensor, after: torch.Tensor, grid: tuple[int, int],
                       path: Path, count: int = 4, min_tile: int = 128) -> Path:
    """images uint8 [B, 3, H, W]; before/after head-averaged CLS->patch maps [B, L, N].

    One mosaic (rows: probe images; columns: the image, then early / middle / last layer before
    and after) under a strip of column labels, composed as one array and written by Pillow:
    plotting it through matplotlib cost seconds per trial for 224 px images. Tiles smaller than
    `min_tile` pixels are enlarged (nearest neighbour) so that the labels fit.
    """
    from PIL import Image, ImageDraw, ImageFont

    groups = layer_groups(before.shape[1])
    count = min(count, images.shape[0])
    lut, pad = _colours(), 2
    tiles = []
    for row in range(count):
        img = images[row].permute(1, 2, 0).numpy().astype(np.float32) / 255.0
        cells = [img] + [_overlay(img, maps[row, layer].reshape(grid).numpy(), lut)
                         for layer in groups.values() for maps in (before, after)]
        tiles.append(np.concatenate([np.pad(c, ((pad, pad), (pad, pad), (0, 0)), constant_values=1.0)
                                     for c in cells], axis=1))
    mosaic = np.concatenate(tiles, axis=0)
    side = images.shape[-1] + 2 * pad
    scale = max(1, -(-min_tile // side))
    mosaic = (mosaic * 255).round().astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)
    tile_w, header = side * scale, 44
    canvas = Image.new("RGB", (mosaic.shape[1], mosaic.shape[0] + header), "white")
    canvas.paste(Image.fromarray(mosaic), (0, header))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=11)
    draw.text((4, 2), "[CLS] attention over patches, head-averaged: pretrained (before) vs tuned (after)",
              fill="black", font=font)
    labels = ["image"] + [f"{name} L{layer}\n{when}" for name, layer in groups.items() for when in ("before", "after")]
    for i, label in enumerate(labels):
        draw.multiline_text(((i + 0.5) * tile_w, header - 2), label, fill="black", font=font, anchor="md",
                            align="center")
    canvas.save(path, compress_level=1)  # fast zlib: the mosaic is small either way
    return path


def entropy_by_layer(before: list[float], after: list[float], path: Path) -> Path:
    # A bare Figure (no pyplot): nothing registered globally, nothing to close.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.14, top=0.9)
    layers = np.arange(len(before))
    ax.plot(layers, before, "o-", label="pretrained")
    ax.plot(layers, after, "s-", label="tuned")
    ax.set_xlabel("layer")
    ax.set_ylabel("CLS->patch entropy (nats)")
    ax.set_xticks(layers)
    ax.legend()
    ax.set_title("Attention entropy by layer")
    fig.savefig(path, dpi=100)
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

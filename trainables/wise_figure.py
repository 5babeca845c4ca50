"""A WiSE-FT sweep's artifacts: the table (one row per α) and the frontier figure.

    write_wise(rows, out_dir)  ->  [wise_frontier.csv, wise_frontier.png]

The figure puts test accuracy against zero-shot retention (the first zero-shot task) along α,
each point coloured by the attention-entropy change against the pretrained model
(`attn/delta_entropy_pct`) and labelled with its α. Without a zero-shot task it plots test
accuracy against representation similarity (`repr/cka/mean`) instead.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from trainables import keys

TABLE, FIGURE = "wise_frontier.csv", "wise_frontier.png"


def write_wise(rows: list[dict[str, float]], out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(out_dir / TABLE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return [out_dir / TABLE, frontier_figure(rows, out_dir / FIGURE)]


def frontier_x(columns) -> str:
    """What the frontier is drawn against: the first retention key, else CKA."""
    return next((k for k in columns if keys.is_retention(k, best=False)), keys.cka())


def frontier_figure(rows: list[dict[str, float]], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = frontier_x(rows[0])
    x = [r.get(x_key, math.nan) for r in rows]
    y = [r.get(keys.TEST_ACC, math.nan) for r in rows]
    colour = [r.get(keys.attn_delta("entropy"), math.nan) for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(x, y, "-", color="0.7", zorder=1)
    points = ax.scatter(x, y, c=colour, cmap="coolwarm", zorder=2, edgecolors="k")
    for r, xi, yi in zip(rows, x, y):
        ax.annotate(f"α={r['alpha']:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    fig.colorbar(points, ax=ax, label="Δ attention entropy (%)")
    ax.set_xlabel(x_key)
    ax.set_ylabel(keys.TEST_ACC)
    ax.set_title("WiSE-FT: θ(α) = (1−α)θ₀ + αθ")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

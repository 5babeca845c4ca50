"""Shared benchmark helpers: model sizes, a saved random CLIP, interleaved CPU-time measurement."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

# ViT-B/32 image tower (224 px, patch 32, width 768, 12 layers); a small text tower, which no
# benchmark exercises. Smoke mode keeps the shape of the work and shrinks everything.
SIZES = {
    "b32": dict(image_size=224, patch_size=32, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12),
    "smoke": dict(image_size=64, patch_size=16, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4),
}


def save_random_clip(size: str, directory: Path | None = None) -> str:
    """A randomly initialised CLIP of the given image-tower size, saved like a hub checkpoint (no download)."""
    from transformers import CLIPConfig, CLIPModel

    from trainables.models import default_image_processor
    from trainables.pretrain_world import build_tokenizer

    directory = Path(directory or tempfile.mkdtemp(prefix=f"driftlab-bench-{size}-"))
    tokenizer = build_tokenizer()
    vision = SIZES[size]
    config = CLIPConfig(vision_config=vision, projection_dim=512 if size == "b32" else 32,
                        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=16,
                                         bos_token_id=0, eos_token_id=1, pad_token_id=2))
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    default_image_processor(vision["image_size"]).save_pretrained(directory)
    return str(directory)


def interleaved(fns: dict[str, Callable[[], object]], reps: int, inner: int = 1, warmup: int = 1) -> dict[str, list]:
    """Process CPU seconds per call of each fn, alternating the order every repetition."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            start = time.process_time()
            for _ in range(inner):
                fns[name]()
            times[name].append((time.process_time() - start) / inner)
    return times


def ratio_stats(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)}


def fixed_threads(n: int = 2) -> None:
    torch.set_num_threads(n)

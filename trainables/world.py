"""The embedded world: a procedural image-text dataset that needs no download.

Each 32x32 image holds one object with a shape, colour, size and position on a textured
background; every image has a caption naming some of its attributes and the object's
bounding box. Everything is a pure function of a seed, so the world is identical on every
machine. Downstream classification tasks read one attribute (shape, size, quadrant); the
colour task is held out: no downstream dataset trains on it, it is only read zero-shot
through the text tower, which is what lets fine-tuning visibly erode it.

    python -c "from trainables.world import generate; w = generate(4, seed=0); print(w.captions)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 32
SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
COLOURS = {
    "red": (215, 35, 35),
    "green": (35, 170, 55),
    "blue": (45, 75, 225),
    "yellow": (235, 215, 35),
    "purple": (145, 50, 190),
    "cyan": (35, 205, 215),
}
SIZES = {"small": 4.5, "medium": 7.0, "large": 10.0}  # object radius in pixels
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")

# Captions name a random subset of the attributes, as web captions do; this is what
# teaches the text tower single-attribute phrases like "a red object".
CAPTION_TEMPLATES = (
    "a {size} {colour} {shape} in the {quadrant}",
    "a {colour} {shape}",
    "a photo of a {colour} {shape}",
    "a {size} {shape}",
    "a {colour} object",
    "something {colour}",
    "a {shape} in the {quadrant}",
    "a {size} {colour} {shape}",
)


@dataclass(frozen=True)
class WorldTask:
    """A classification task over one attribute, with its class names and prompt templates."""

    attribute: str
    classes: tuple[str, ...]
    templates: tuple[str, ...]
    held_out: bool = False  # True: never a downstream target, only read zero-shot


TASKS = {
    "shape": WorldTask("shape", SHAPES, ("a {}", "a photo of a {}", "a {} in the picture")),
    "size": WorldTask("size", tuple(SIZES), ("a {} object", "something {}", "a {} shape")),
    "quadrant": WorldTask("quadrant", QUADRANTS, ("something in the {}", "an object in the {}")),
    "colour": WorldTask("colour", tuple(COLOURS), ("a {} object", "something {}", "a photo of a {} object"),
                        held_out=True),
}


@dataclass
class World:
    """N rendered samples: images uint8 [N, 32, 32, 3], per-attribute label arrays, boxes, captions."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    boxes: np.ndarray  # [N, 4] float32 (x0, y0, x1, y1) in pixels, x1/y1 exclusive
    captions: list[str]


def vocabulary() -> list[str]:
    """Every word any caption or prompt template can contain (the tokenizer's vocabulary)."""
    words = set()
    phrases = list(CAPTION_TEMPLATES) + [t for task in TASKS.values() for t in task.templates]
    phrases += [c for task in TASKS.values() for c in task.classes]
    for phrase in phrases:
        words.update(re.sub(r"\{\w*\}", " ", phrase).split())
    return sorted(words)


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n labels in [0, k) with every class present floor(n/k) or ceil(n/k) times, shuffled."""
    return rng.permutation(np.arange(n) % k)


def _background(rng: np.random.Generator) -> np.ndarray:
    """A desaturated texture: low-frequency blotches, faint stripes and pixel noise."""
    size = IMAGE_SIZE
    level = rng.uniform(70, 180)
    tint = rng.uniform(-12, 12, size=3)
    coarse = rng.normal(0, 22, size=(4, 4))
    blotches = np.kron(coarse, np.ones((size // 4, size // 4)))
    yy, xx = np.mgrid[0:size, 0:size]
    angle, freq = rng.uniform(0, np.pi), rng.uniform(0.3, 0.9)
    stripes = 10 * np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 6.3))
    grey = level + blotches + stripes
    img = grey[..., None] + tint + rng.normal(0, 8, size=(size, size, 3))
    return img


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of a shape of radius r, given pixel offsets from its centre."""
    dist = np.hypot(dx, dy)
    if shape == "circle":
        return dist <= r
    if shape == "square":
        return np.maximum(abs(dx), abs(dy)) <= 0.85 * r
    if shape == "triangle":
        return (dy >= -r) & (dy <= 0.8 * r) & (abs(dx) <= 0.6 * (dy + r))
    if shape == "cross":
        arm = 0.35 * r
        return ((abs(dx) <= arm) & (abs(dy) <= r)) | ((abs(dy) <= arm) & (abs(dx) <= r))
    if shape == "ring":
        return (dist <= r) & (dist >= 0.55 * r)
    if shape == "diamond":
        return abs(dx) + abs(dy) <= 1.1 * r
    raise ValueError(f"unknown shape {shape!r}")


def generate(n: int, seed: int) -> World:
    """Render n samples deterministically from seed; every attribute is exactly class-balanced."""
    rng = np.random.default_rng(seed)
    labels = {
        "shape": _balanced(rng, n, len(SHAPES)),
        "colour": _balanced(rng, n, len(COLOURS)),
        "size": _balanced(rng, n, len(SIZES)),
        "quadrant": _balanced(rng, n, len(QUADRANTS)),
    }
    colour_rgb = np.array(list(COLOURS.values()), dtype=np.float64)
    radii = np.array(list(SIZES.values()))
    # Sample on a 2x grid and average 2x2 blocks: cheap anti-aliasing for small shapes.
    fine = np.arange(2 * IMAGE_SIZE) / 2 + 0.25
    fy, fx = np.meshgrid(fine, fine, indexing="ij")
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    boxes = np.empty((n, 4), dtype=np.float32)
    captions = []
    half = IMAGE_SIZE / 2
    for i in range(n):
        shape = SHAPES[labels["shape"][i]]
        r = radii[labels["size"][i]] * rng.uniform(0.9, 1.1)
        q = labels["quadrant"][i]
        # The centre lies inside its quadrant and keeps the whole object in the frame.
        lo_x, lo_y = (half if q % 2 else 0), (half if q >= 2 else 0)
        cx = rng.uniform(max(lo_x, r + 0.5), min(lo_x + half, IMAGE_SIZE - r - 0.5))
        cy = rng.uniform(max(lo_y, r + 0.5), min(lo_y + half, IMAGE_SIZE - r - 0.5))
        fine_mask = _shape_mask(shape, fx - cx, fy - cy, r)
        cover = fine_mask.reshape(IMAGE_SIZE, 2, IMAGE_SIZE, 2).mean(axis=(1, 3))[..., None]
        rgb = colour_rgb[labels["colour"][i]] + rng.normal(0, 10, size=3)
        img = (1 - cover) * _background(rng) + cover * (rgb + rng.normal(0, 6, size=(IMAGE_SIZE, IMAGE_SIZE, 3)))
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
        ys, xs = np.nonzero(cover[..., 0] > 0)
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        template = CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))]
        captions.append(template.format(shape=shape, colour=list(COLOURS)[labels["colour"][i]],
                                        size=list(SIZES)[labels["size"][i]], quadrant=QUADRANTS[q]))
    return World(images=images, labels=labels, boxes=boxes, captions=captions)

"""The embedded world: a procedural image-text dataset that needs no download.

Each 48x48 image holds one object with a shape, colour, shade, size and position
on a textured background; every image has a caption naming some of its attributes and the
object's bounding box. Everything is a pure function of a seed, so the world is identical on
every machine.

Downstream classification tasks read one attribute. The default, `shade` (how pale or dark
the object's colour is), plays the part a satellite or medical dataset plays for a web-trained
CLIP: captions never name it, only a coarser lightness in words of their own ("a bright red
object", "a dim red object"), so the pretrained model reads it at chance zero-shot while its
embedding carries enough of it for a linear probe to read most of it, as web-trained CLIP's
features carry a satellite dataset its class names do not reach. The pixels carry it plainly
and it lives on the object, so learning it means looking at the object. The colour task is
held out: no downstream dataset trains on it, it is only read zero-shot through the text
tower, which is what lets fine-tuning visibly erode it.

    python -c "from trainables.world import generate; w = generate(4, seed=0); print(w.captions)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 48
SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
COLOURS = {
    "red": (215, 35, 35),
    "green": (35, 170, 55),
    "blue": (45, 75, 225),
    "yellow": (235, 215, 35),
    "purple": (145, 50, 190),
    "cyan": (35, 205, 215),
}
SIZES = {"small": 8.0, "medium": 11.0, "large": 14.0}  # object radius in pixels
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")
# Shade: how far the object's colour is mixed toward white (> 0) or black (< 0). A dark red is
# still red: the colour names stay true, and colour zero-shot must see through the shade.
SHADES = {"pale": 0.5, "light": 0.22, "deep": -0.3, "dark": -0.6}
# Captions describe lightness only coarsely, in words of their own: the pretrained image tower
# learns features that carry part of the shade (a linear probe reads some of it), while the
# shade names themselves never occur in a caption, so prompts built from them read it poorly,
# as web-trained CLIP reads a specialised dataset's class names.
TONES = {"pale": "bright", "light": "bright", "deep": "dim", "dark": "dim"}

# Captions name a random subset of the attributes, as web captions do (weights: how often
# each template is drawn). This is what teaches the text tower single-attribute phrases like
# "a red object". The shade is never named; a small share of captions gives its coarse tone.
CAPTION_TEMPLATES = {
    "a {size} {colour} {shape} in the {quadrant}": 2,
    "a {colour} {shape}": 3,
    "a photo of a {colour} {shape}": 2,
    "a {size} {shape}": 2,
    "a {colour} object": 3,
    "something {colour}": 2,
    "a {shape} in the {quadrant}": 1,
    "a {size} {colour} {shape}": 2,
    "a {tone} {colour} object": 2,
}


@dataclass(frozen=True)
class WorldTask:
    """A classification task over one attribute, with its class names and prompt templates."""

    attribute: str
    classes: tuple[str, ...]
    templates: tuple[str, ...]
    held_out: bool = False  # True: never a downstream target, only read zero-shot


TASKS = {
    "shade": WorldTask("shade", tuple(SHADES), ("a {} object", "something {}", "a {} shape")),
    "shape": WorldTask("shape", SHAPES, ("a {}", "a photo of a {}", "a {} in the picture")),
    "size": WorldTask("size", tuple(SIZES), ("a {} object", "something {}", "a {} shape")),
    "quadrant": WorldTask("quadrant", QUADRANTS, ("something in the {}", "an object in the {}")),
    "colour": WorldTask("colour", tuple(COLOURS), ("a {} object", "something {}", "a photo of a {} object"),
                        held_out=True),
}
ATTRIBUTES = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES), "quadrant": QUADRANTS,
              "shade": tuple(SHADES)}


@dataclass
class World:
    """N rendered samples: images uint8 [N, 48, 48, 3], per-attribute label arrays, boxes, captions."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    boxes: np.ndarray  # [N, 4] float32 (x0, y0, x1, y1) in pixels, x1/y1 exclusive
    captions: list[str]


def vocabulary() -> list[str]:
    """Every word any caption or prompt template can contain (the tokenizer's vocabulary)."""
    words = set()
    phrases = list(CAPTION_TEMPLATES) + [t for task in TASKS.values() for t in task.templates]
    phrases += [c for classes in ATTRIBUTES.values() for c in classes] + list(TONES.values())
    for phrase in phrases:
        words.update(re.sub(r"\{\w*\}", " ", phrase).split())
    return sorted(words)


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n labels in [0, k) with every class present floor(n/k) or ceil(n/k) times, shuffled."""
    return rng.permutation(np.arange(n) % k)


def _backgrounds(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, S, S, 3] desaturated textures: low-frequency blotches and faint stripes (pixel noise comes later)."""
    size = IMAGE_SIZE
    level = rng.uniform(70, 180, size=(n, 1, 1))
    tint = rng.uniform(-12, 12, size=(n, 1, 1, 3))
    coarse = rng.normal(0, 22, size=(n, 4, 4))
    blotches = np.repeat(np.repeat(coarse, size // 4, axis=1), size // 4, axis=2)
    yy, xx = np.mgrid[0:size, 0:size]
    angle = rng.uniform(0, np.pi, size=(n, 1, 1))
    freq = rng.uniform(0.2, 0.6, size=(n, 1, 1))
    phase = rng.uniform(0, 6.3, size=(n, 1, 1))
    stripes = 10 * np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    grey = level + blotches + stripes
    return (grey[..., None] + tint).astype(np.float32)


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean masks [n, H, W] of one kind of shape of radius r [n, 1, 1], given pixel offsets from the centres."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return np.hypot(dx, dy) <= r
    if shape == "square":
        return np.maximum(ax, ay) <= 0.85 * r
    if shape == "triangle":
        return (dy >= -r) & (dy <= 0.8 * r) & (ax <= 0.6 * (dy + r))
    if shape == "cross":
        arm = 0.35 * r
        return ((ax <= arm) & (ay <= r)) | ((ay <= arm) & (ax <= r))
    if shape == "ring":
        dist = np.hypot(dx, dy)
        return (dist <= r) & (dist >= 0.55 * r)
    if shape == "diamond":
        return ax + ay <= 1.1 * r
    raise ValueError(f"unknown shape {shape!r}")


def _pool2x2(samples: np.ndarray) -> np.ndarray:
    """[n, 2H, 2W] booleans -> [n, H, W] float32 count of true samples in each 2x2 block."""
    counts = samples[:, 0::2, 0::2].astype(np.uint8) + samples[:, 1::2, 0::2] + samples[:, 0::2, 1::2] \
        + samples[:, 1::2, 1::2]
    return counts.astype(np.float32)


def _captions(rng: np.random.Generator, labels: dict[str, np.ndarray]) -> list[str]:
    templates = list(CAPTION_TEMPLATES)
    weights = np.array(list(CAPTION_TEMPLATES.values()), dtype=float)
    chosen = rng.choice(len(templates), size=len(labels["shape"]), p=weights / weights.sum())
    words = [{a: ATTRIBUTES[a][labels[a][i]] for a in ATTRIBUTES} for i in range(len(chosen))]
    return [templates[t].format(**w, tone=TONES[w["shade"]]) for w, t in zip(words, chosen)]


def _render(rng: np.random.Generator, labels: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, S, S, 3] uint8 and boxes [n, 4] for one chunk of labels."""
    n, size, half = len(labels["shape"]), IMAGE_SIZE, IMAGE_SIZE / 2
    r = np.array(list(SIZES.values()))[labels["size"]] * rng.uniform(0.9, 1.1, size=n)
    q = labels["quadrant"]
    # The centre lies inside its quadrant and keeps the whole object in the frame.
    lo_x, lo_y = np.where(q % 2 == 1, half, 0.0), np.where(q >= 2, half, 0.0)
    cx = rng.uniform(np.maximum(lo_x, r + 0.5), np.minimum(lo_x + half, size - r - 0.5))
    cy = rng.uniform(np.maximum(lo_y, r + 0.5), np.minimum(lo_y + half, size - r - 0.5))
    # Sample on a 2x grid and average 2x2 blocks: cheap anti-aliasing for small shapes.
    fine = (np.arange(2 * size) / 2 + 0.25).astype(np.float32)
    fy, fx = np.meshgrid(fine, fine, indexing="ij")
    mask = np.empty((n, 2 * size, 2 * size), dtype=bool)
    # One shape at a time, so each image evaluates only its own geometry.
    for k, shape in enumerate(SHAPES):
        i = labels["shape"] == k
        mask[i] = _shape_mask(shape, fx - cx[i, None, None], fy - cy[i, None, None], r[i, None, None])
    covered_samples = _pool2x2(mask)
    cover = (covered_samples / 4.0)[..., None]
    rgb = np.array(list(COLOURS.values()), dtype=np.float32)[labels["colour"]] + rng.normal(0, 10, size=(n, 3))
    mix = np.array(list(SHADES.values()))[labels["shade"]][:, None] + rng.uniform(-0.04, 0.04, size=(n, 1))
    rgb = np.where(mix > 0, rgb + mix * (255 - rgb), rgb * (1 + mix))
    surface = rgb[:, None, None, :].astype(np.float32)
    # Pixel noise: 8 levels on the background, 6 on the object.
    noise = rng.standard_normal((n, size, size, 3), dtype=np.float32) * (8 - 2 * cover)
    images = np.clip((1 - cover) * _backgrounds(rng, n) + cover * surface + noise, 0, 255).astype(np.uint8)
    covered = covered_samples > 0
    cols, rows = covered.any(axis=1), covered.any(axis=2)
    boxes = np.stack([cols.argmax(1), rows.argmax(1), size - cols[:, ::-1].argmax(1), size - rows[:, ::-1].argmax(1)],
                     axis=1).astype(np.float32)
    return images, boxes


RENDER_CHUNK = 512  # images rendered at once; part of the world's definition (it orders the random draws)


def generate(n: int, seed: int) -> World:
    """Render n samples deterministically from seed; every attribute is exactly class-balanced."""
    rng = np.random.default_rng(seed)
    labels = {name: _balanced(rng, n, len(classes)) for name, classes in ATTRIBUTES.items()}
    captions = _captions(rng, labels)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    boxes = np.empty((n, 4), dtype=np.float32)
    # In chunks: the 2x supersampled masks of a whole split at once would need GBs.
    for start in range(0, n, RENDER_CHUNK):
        part = {name: values[start:start + RENDER_CHUNK] for name, values in labels.items()}
        images[start:start + RENDER_CHUNK], boxes[start:start + RENDER_CHUNK] = _render(rng, part)
    return World(images=images, labels=labels, boxes=boxes, captions=captions)

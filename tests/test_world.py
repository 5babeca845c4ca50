"""The procedural world: deterministic, boxes contain objects, captions match attributes, labels balanced."""

from __future__ import annotations

import numpy as np

from trainables import world


def test_same_seed_same_world_different_seed_different():
    a, b, c = world.generate(24, seed=3), world.generate(24, seed=3), world.generate(24, seed=4)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert not np.array_equal(a.images, c.images)


def shaded(colour: int, shade: int) -> np.ndarray:
    """The object's nominal RGB: its colour mixed toward white (mix > 0) or black (mix < 0)."""
    base = np.array(list(world.COLOURS.values()), dtype=float)[colour]
    mix = list(world.SHADES.values())[shade]
    return base + mix * (255 - base) if mix > 0 else base * (1 + mix)


def test_boxes_contain_their_objects():
    w = world.generate(120, seed=1)
    saturated = [k for k, name in enumerate(world.SHADES) if name in ("light", "deep")]
    for img, box, colour, shade in zip(w.images, w.boxes, w.labels["colour"], w.labels["shade"]):
        # Pixels close to the object's colour must lie inside the box. Only the saturated shades are
        # told apart from the grey background this way (pale and dark colours come close to grey).
        if shade not in saturated:
            continue
        dist = np.linalg.norm(img.astype(float) - shaded(colour, shade), axis=-1)
        ys, xs = np.nonzero(dist < 40)
        assert len(xs) > 4
        x0, y0, x1, y1 = box
        inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        assert inside.mean() > 0.97
        assert 0 <= x0 < x1 <= world.IMAGE_SIZE and 0 <= y0 < y1 <= world.IMAGE_SIZE


def test_box_centre_lies_in_labelled_quadrant_and_size_orders_area():
    w = world.generate(120, seed=2)
    cx = (w.boxes[:, 0] + w.boxes[:, 2]) / 2
    cy = (w.boxes[:, 1] + w.boxes[:, 3]) / 2
    right, bottom = w.labels["quadrant"] % 2 == 1, w.labels["quadrant"] >= 2
    half = world.IMAGE_SIZE / 2
    assert np.mean((cx >= half) == right) > 0.95
    assert np.mean((cy >= half) == bottom) > 0.95
    area = (w.boxes[:, 2] - w.boxes[:, 0]) * (w.boxes[:, 3] - w.boxes[:, 1])
    means = [area[w.labels["size"] == k].mean() for k in range(len(world.SIZES))]
    assert means[0] < means[1] < means[2]


def test_captions_name_the_true_attributes():
    w = world.generate(200, seed=5)
    for i, caption in enumerate(w.captions):
        mentioned = 0
        for attribute, classes in world.ATTRIBUTES.items():
            true = classes[w.labels[attribute][i]]
            others = [c for c in classes if c != true]
            assert not any(f" {o}" in f" {caption}" for o in others if o not in true), (caption, attribute)
            mentioned += f" {true}" in f" {caption}"
        assert mentioned >= 1


def test_shades_mix_the_object_colour_toward_white_or_black():
    w = world.generate(240, seed=9)
    for i, (x0, y0, x1, y1) in enumerate(w.boxes.astype(int)):
        if world.SHAPES[w.labels["shape"][i]] == "ring":  # the ring's centre is background
            continue
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        centre = np.median(w.images[i, cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3).astype(float), axis=0)
        # Per-image colour jitter (sd 10 per channel) and pixel noise (sd 6) stay well inside this bound.
        assert np.abs(centre - shaded(w.labels["colour"][i], w.labels["shade"][i])).max() < 45


def test_the_default_task_is_never_captioned_only_its_coarse_tone_sometimes():
    w = world.generate(2000, seed=6)
    assert not any(f" {s} " in f" {c} " for s in world.SHADES for c in w.captions)
    toned = [i for i, c in enumerate(w.captions) if any(f" {t} " in f" {c} " for t in world.TONES.values())]
    assert 0.03 < len(toned) / len(w.captions) < 0.15
    for i in toned:  # the tone is true: bright for pale and light, dim for deep and dark
        assert f" {world.TONES[world.ATTRIBUTES['shade'][w.labels['shade'][i]]]} " in f" {w.captions[i]} "


def test_every_task_is_exactly_balanced():
    w = world.generate(144, seed=7)
    for task in world.TASKS.values():
        counts = np.bincount(w.labels[task.attribute], minlength=len(task.classes))
        assert counts.max() - counts.min() <= 1


def test_vocabulary_covers_every_caption_and_prompt():
    vocab = set(world.vocabulary())
    w = world.generate(100, seed=8)
    prompts = [t.format(c) for task in world.TASKS.values() for t in task.templates for c in task.classes]
    for text in w.captions + prompts:
        assert set(text.split()) <= vocab, text
    assert [t for t in world.TASKS.values() if t.held_out] == [world.TASKS["colour"]]

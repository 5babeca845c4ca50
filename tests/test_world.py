"""The procedural world: deterministic, boxes contain objects, captions match attributes, labels balanced."""

from __future__ import annotations

import numpy as np

from trainables import world


def test_same_seed_same_world_different_seed_different():
    a, b, c = world.generate(24, seed=3), world.generate(24, seed=3), world.generate(24, seed=4)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert not np.array_equal(a.images, c.images)


def test_boxes_contain_their_objects():
    w = world.generate(60, seed=1)
    colours = np.array(list(world.COLOURS.values()), dtype=float)
    for img, box, colour in zip(w.images, w.boxes, w.labels["colour"]):
        # Pixels close to the object's colour (the background is desaturated grey) must lie inside the box.
        dist = np.linalg.norm(img.astype(float) - colours[colour], axis=-1)
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
    names = {"shape": world.SHAPES, "colour": tuple(world.COLOURS), "size": tuple(world.SIZES),
             "quadrant": world.QUADRANTS}
    for i, caption in enumerate(w.captions):
        mentioned = 0
        for attribute, classes in names.items():
            true = classes[w.labels[attribute][i]]
            others = [c for c in classes if c != true]
            assert not any(f" {o}" in f" {caption}" for o in others if o not in true), (caption, attribute)
            mentioned += f" {true}" in f" {caption}"
        assert mentioned >= 1


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

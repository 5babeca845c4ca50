"""The dataset registry: names -> class names, prompt templates, and train/val/test splits.

`embedded/<task>` reads the procedural world (trainables/world.py); real datasets (hub ids,
image folders, parquet, saved datasets) come from trainables/real_data.py through `datasets`.
Every task is returned the same way: a `TaskData` whose splits are preprocessed by the
model's own image processor, so the trial never knows where its data came from.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from trainables import world
from trainables.dataset_check import looks_like_path
from trainables.errors import ConfigError
from trainables.splits import Split, TaskData, balanced_indices
from trainables.world_cache import load_world

EMBEDDED_SPLITS = {"train": (2048, 101), "val": (512, 102), "test": (1024, 103)}


def embedded_names() -> list[str]:
    return [f"embedded/{t}" for t in world.TASKS]


def known_names() -> list[str]:
    from trainables.real_data import REAL_DATASETS
    return embedded_names() + list(REAL_DATASETS)


def check_dataset_name(key: str, name: str, zero_shot: bool) -> None:
    """Fail early on a dataset name that can be neither a registry entry, a hub id nor a local path."""
    from trainables.real_data import REAL_DATASETS

    if name.startswith("embedded/"):
        task = world.TASKS.get(name.split("/", 1)[1])
        if task is None:
            raise ConfigError(f"{key}: unknown embedded task {name!r}; known: {', '.join(embedded_names())}")
        if task.held_out and not zero_shot:
            raise ConfigError(f"{key}: {name!r} is the held-out zero-shot task; train on one of "
                              f"{', '.join(n for n in embedded_names() if not world.TASKS[n[9:]].held_out)}")
        return
    if name in REAL_DATASETS or Path(name).expanduser().exists():
        return
    if looks_like_path(name):  # not a hub id: "not in the HF cache" would mislead
        raise ConfigError(f"{key}: {name!r} does not exist (a local image folder, parquet file or "
                          "save_to_disk directory was expected)")
    if "/" not in name:
        raise ConfigError(f"{key}: unknown dataset {name!r}; known: {', '.join(known_names())}, "
                          "or a hub id (org/name), an image folder or a parquet file")


def load_task(name: str, image_processor, seed: int = 0, data_fraction: float = 1.0) -> TaskData:
    """Load a task's splits; `data_fraction` < 1 keeps that class-balanced share of train (seeded)."""
    if name.startswith("embedded/"):
        task = _load_embedded(name.split("/", 1)[1], _processor_key(image_processor))
    else:
        from trainables.real_data import load_real_task
        task = load_real_task(name, image_processor)
    if data_fraction < 1.0:
        keep = balanced_indices(task.train.labels.numpy(), per_class_fraction=data_fraction, seed=seed)
        task = TaskData(task.name, task.classes, task.templates, task.train.subset(keep), task.val, task.test,
                        task.augment)
    return task


def probe_indices(val: Split, size: int) -> np.ndarray:
    """The fixed attention probe set: `size` class-balanced items of val, identical for every trial."""
    return balanced_indices(val.labels.numpy(), total=min(size, len(val)), seed=0)


def _processor_key(processor) -> tuple:
    """Hashable description of what an image processor does (for caching preprocessed splits)."""
    crop = processor.crop_size
    return (
        int(processor.size.get("shortest_edge", processor.size.get("height"))),
        int(crop["height"]), int(crop["width"]),
    )


@functools.lru_cache(maxsize=8)
def _load_embedded(task_name: str, processor_key: tuple) -> TaskData:
    task = world.TASKS[task_name]
    splits = {name: _embedded_split(name, task.attribute, processor_key) for name in EMBEDDED_SPLITS}
    # Flips and crops would change the quadrant label and the box; the world has data to spare.
    return TaskData(f"embedded/{task_name}", task.classes, task.templates, augment=False, **splits)


@functools.lru_cache(maxsize=8)
def _world(split: str) -> world.World:
    n, seed = EMBEDDED_SPLITS[split]
    return load_world(n, seed)


def _embedded_split(split: str, attribute: str, processor_key: tuple) -> Split:
    w = _world(split)
    shortest, crop_h, crop_w = processor_key
    pixels = torch.from_numpy(w.images).permute(0, 3, 1, 2)
    scale = shortest / world.IMAGE_SIZE
    if scale != 1 or crop_h != shortest or crop_w != shortest:
        # Square images: resize to the shortest edge, then the centre crop is a plain offset.
        top, left = (shortest - crop_h) // 2, (shortest - crop_w) // 2
        # In chunks: a whole split upsampled in float at once would need GBs for 224 px models.
        pixels = torch.cat([
            torch.nn.functional.interpolate(chunk.float(), size=(shortest, shortest), mode="bicubic",
                                            align_corners=False).clamp(0, 255).round().to(torch.uint8)
            [:, :, top:top + crop_h, left:left + crop_w]
            for chunk in pixels.split(256)]).contiguous()
    else:
        top = left = 0
    boxes = torch.from_numpy(w.boxes).clone() * scale
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - left).clamp(0, crop_w)
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - top).clamp(0, crop_h)
    return Split(pixels=pixels, labels=torch.from_numpy(w.labels[attribute]).long(), boxes=boxes)


def load_zero_shot(name: str, image_processor) -> tuple[tuple[str, ...], tuple[str, ...], Split]:
    """(class names, templates, labelled images) of a zero-shot task: its test split (only that is loaded)."""
    if name.startswith("embedded/"):
        task = load_task(name, image_processor)
    else:
        from trainables.real_data import load_real_task
        task = load_real_task(name, image_processor, test_only=True)
    return task.classes, task.templates, task.test

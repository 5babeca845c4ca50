"""`driftlab pretrain-world` is deterministic and records its settings and zero-shot accuracies;
the shipped embedded checkpoint loads, and its zero-shot accuracies, recomputed from the shipped
weights, are the recorded ones: far above chance on the held-out task, near chance on the default one."""

from __future__ import annotations

import json

import pytest
import torch

from orchestrator.cli import main as driftlab
from trainables import world
from trainables.models import EMBEDDED_DIR, load_clip
from trainables.pretrain_world import zero_shot_accuracies


@pytest.mark.slow
def test_rerunning_reproduces_the_checkpoint(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert driftlab(["pretrain-world", "--out", str(a), "--steps", "3"]) == 0
    assert driftlab(["pretrain-world", "--out", str(b), "--steps", "3"]) == 0
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    record = json.loads((a / "pretrain_record.json").read_text())
    assert record["settings"]["steps"] == 3 and set(record["zero_shot_accuracy"]) == set(world.TASKS)
    assert load_clip(str(a)).tokenizer is not None


def test_shipped_world_model_is_small_with_a_six_by_six_patch_grid():
    assert sum(p.stat().st_size for p in EMBEDDED_DIR.iterdir()) < 5 * 2**20
    vision = load_clip("embedded").model.config.vision_config
    assert vision.image_size == world.IMAGE_SIZE and vision.image_size // vision.patch_size >= 6


def test_shipped_zero_shot_accuracies_recomputed_from_the_shipped_weights():
    record = json.loads((EMBEDDED_DIR / "pretrain_record.json").read_text())
    loaded = load_clip("embedded")
    assert loaded.tokenizer is not None
    processor = loaded.image_processor
    measured = zero_shot_accuracies(loaded.model, loaded.tokenizer, torch.tensor(processor.image_mean),
                                    torch.tensor(processor.image_std))
    # The same render and classifier as the record; only float summation order may differ between machines.
    for task, accuracy in record["zero_shot_accuracy"].items():
        assert abs(measured[task] - accuracy) <= 2 / record["settings"]["eval_size"], task
    # What the world is built to show: the held-out task far above chance, the default downstream task not.
    assert measured["colour"] >= 0.9 and record["chance"]["colour"] <= 0.2
    assert measured["shade"] <= 0.5

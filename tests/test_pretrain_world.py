"""`driftlab pretrain-world` is deterministic and records its settings and zero-shot accuracies;
the shipped embedded checkpoint loads and is far above chance on the held-out task."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli import main as driftlab
from trainables.models import EMBEDDED_DIR, load_clip


@pytest.mark.slow
def test_rerunning_reproduces_the_checkpoint(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert driftlab(["pretrain-world", "--out", str(a), "--steps", "3"]) == 0
    assert driftlab(["pretrain-world", "--out", str(b), "--steps", "3"]) == 0
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    record = json.loads((a / "pretrain_record.json").read_text())
    assert record["settings"]["steps"] == 3 and set(record["zero_shot_accuracy"]) == {"shape", "size", "quadrant",
                                                                                         "colour"}
    assert load_clip(str(a)).tokenizer is not None


def test_shipped_world_model_is_small_and_far_above_chance_on_the_held_out_task():
    record = json.loads((EMBEDDED_DIR / "pretrain_record.json").read_text())
    assert record["zero_shot_accuracy"]["colour"] >= 0.80 and record["chance"]["colour"] <= 0.20
    assert sum(p.stat().st_size for p in EMBEDDED_DIR.iterdir()) < 5 * 2**20
    loaded = load_clip("embedded")
    assert loaded.tokenizer is not None and loaded.model.config.vision_config.image_size == 32

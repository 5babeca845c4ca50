"""A trial runs from a local image folder, a parquet file and a saved dataset exactly as from a hub id."""

from __future__ import annotations

import json

import datasets
import pytest

from orchestrator.cli import main as driftlab
from tests.test_real_data import _image, _image_dataset, _labelled, _saved_dict


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")
    datasets.disable_progress_bars()


def _image_folder(root):
    for label, name in enumerate(["apple", "banana", "cherry"]):
        (root / name).mkdir(parents=True)
        for k in range(16):
            _image(label * 16 + k, label).save(root / name / f"{k}.png")
    return str(root)


def _parquet(path):
    items, labels = _labelled(0, 16)
    _image_dataset(items, labels).to_parquet(str(path))
    return str(path)


@pytest.mark.parametrize("build", ["folder", "parquet", "saved"])
def test_trial_on_a_local_dataset_with_zero_shot_on_it(tmp_path, tiny_clip_dir, capsys, build):
    source = {"folder": lambda: _image_folder(tmp_path / "folder"),
              "parquet": lambda: _parquet(tmp_path / "data.parquet"),
              "saved": lambda: _saved_dict(tmp_path, train_per_class=16)[0]}[build]()
    code = driftlab(["trial", "--model", tiny_clip_dir, "--dataset", source, "--zero-shot", source,
                     "--epochs", "2", "--batch-size", "8", "--probe-size", "6", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    metrics = json.loads(captured.out)
    assert metrics["status"] == "completed"
    key = "zeroshot/" + {"folder": "folder", "parquet": "data", "saved": "saved"}[build]
    assert 0 <= metrics[f"{key}/acc"] <= 100 and metrics[f"{key}/retention"] >= 0
    assert "attn/box_alignment/mean" not in metrics  # real data has no boxes
    assert 0 <= metrics["attn/mass95/mean"] <= 1 and metrics["test/acc"] >= 0

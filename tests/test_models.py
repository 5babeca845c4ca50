"""Model helpers: the zero-shot text classifier batches every prompt and still equals the per-class formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainables import models
from trainables.models import load_clip, text_classifier

CLASSES = ("red", "dark blue", "a very light green", "grey")
TEMPLATES = ("a photo of a {} shape.", "{}", "a blurry low contrast photo of the {} object on a texture.")


@torch.no_grad()
def per_class_classifier(clip, tokenizer, classes, templates) -> torch.Tensor:
    """The formula as it was written first: one text-tower forward per class."""
    rows = []
    for name in classes:
        tokens = tokenizer([t.format(name) for t in templates], padding=True, truncation=True, return_tensors="pt")
        text = clip.text_projection(clip.text_model(input_ids=tokens["input_ids"],
                                                  attention_mask=tokens["attention_mask"]).pooler_output)
        rows.append(F.normalize(F.normalize(text, dim=-1).mean(0), dim=-1))
    return torch.stack(rows)


@pytest.mark.parametrize("text_batch", [models.TEXT_BATCH, 4])  # one forward; chunks of whole classes
def test_batched_classifier_equals_the_per_class_one(tiny_clip_dir, monkeypatch, text_batch):
    loaded = load_clip(tiny_clip_dir)
    monkeypatch.setattr(models, "TEXT_BATCH", text_batch)
    batched = text_classifier(loaded.model, loaded.tokenizer, CLASSES, TEMPLATES, "cpu")
    reference = per_class_classifier(loaded.model, loaded.tokenizer, CLASSES, TEMPLATES)
    assert batched.shape == (len(CLASSES), loaded.model.config.projection_dim)
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-6)

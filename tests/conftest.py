"""Shared fixtures: tiny random CLIP checkpoints saved to disk, offline hub settings."""

from __future__ import annotations

import os

import pytest

# Nothing may reach the Hugging Face hub from the tests: everything is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def save_tiny_clip(directory, with_tokenizer: bool = True, seed: int = 0):
    """A randomly initialised CLIP (32 px, patch 8, width 32, 2 layers) saved like a hub checkpoint."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from trainables.models import default_image_processor
    from trainables.pretrain_world import build_tokenizer

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = CLIPConfig(
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                           num_hidden_layers=2, num_attention_heads=4),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                         pad_token_id=2),
        projection_dim=16)
    CLIPModel(config).save_pretrained(directory)
    default_image_processor(32).save_pretrained(directory)
    if with_tokenizer:
        tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def tiny_clip_no_tokenizer_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip_notok"), with_tokenizer=False)

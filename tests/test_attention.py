"""Attention capture: really returns tensors under SDPA, matches eager attention, leaves the model as found."""

from __future__ import annotations

import pytest
import torch

from trainables.attention import AttentionCapture
from trainables.config import TrialConfig
from trainables.models import load_clip
from trainables.trial import Trial


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_capture_matches_eager_attention_and_restores_the_model(tiny_clip_dir):
    clip = load_clip(tiny_clip_dir).model
    assert clip.config._attn_implementation == "sdpa"
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), AttentionCapture(clip) as cap:
        sdpa_out = clip.vision_model(pixel_values=x).pooler_output
    probs, rows = cap.probabilities(), cap.cls_logits()
    assert len(probs) == 2 and probs[0].shape == (3, 4, 17, 17) and rows[0].shape == (3, 4, 17)
    assert _hooks(clip) == 0 and clip.config._attn_implementation == "sdpa"

    clip.set_attn_implementation("eager")
    with torch.no_grad():
        eager = clip.vision_model(pixel_values=x, output_attentions=True)
    for mine, theirs in zip(probs, eager.attentions):
        assert torch.allclose(mine, theirs, atol=1e-6)
    for row, theirs in zip(rows, eager.attentions):
        assert torch.allclose(torch.softmax(row, -1), theirs[:, :, 0], atol=1e-6)
    assert torch.allclose(sdpa_out, eager.pooler_output, atol=1e-5)


def test_capture_sees_lora_deltas_and_gradients_flow(tiny_clip_dir):
    trial = Trial(TrialConfig.from_dict(dict(model=tiny_clip_dir, method="lora", zero_shot=[], probe_size=8)))
    x = torch.randn(2, 3, 32, 32)
    clip = trial.model.clip_model()
    hooks_before = _hooks(trial.model)  # peft/transformers keep a few hooks of their own
    with torch.no_grad(), AttentionCapture(clip) as cap:
        clip.vision_model(pixel_values=x)
    before = cap.cls_logits()[0].clone()
    with torch.no_grad():
        for n, p in trial.model.named_parameters():
            if "lora_B" in n:
                p.fill_(0.3)
    for p in trial.phases[0].params:
        p.requires_grad_(True)
    with AttentionCapture(clip, layers=[0]) as cap:
        clip.vision_model(pixel_values=x)
    after = cap.cls_logits()[0]
    assert not torch.allclose(before, after)
    after.sum().backward()
    grads = [p.grad for n, p in trial.model.named_parameters() if "layers.0.self_attn.q_proj.lora_B" in n]
    assert grads and grads[0] is not None and grads[0].abs().sum() > 0
    assert _hooks(trial.model) == hooks_before


def test_bad_layer_index_is_one_clear_error(tiny_clip_dir):
    clip = load_clip(tiny_clip_dir).model
    with pytest.raises(ValueError, match=r"gta_layers.*0\.\.1"):
        AttentionCapture(clip, layers=[5])

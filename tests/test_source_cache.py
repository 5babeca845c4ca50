"""The source-logit cache: what it computes, what it reads back, its bound, and that GTA's loss is unchanged."""

from __future__ import annotations

import pytest
import torch

from trainables.config import TrialConfig
from trainables.methods.source_cache import SourceLogitCache
from trainables.splits import normalise
from trainables.trial import Trial


class CountingForward:
    """A stand-in source forward: [B, 3, H, W] -> [B, L=2, H=1, T=3] from the pixels; counts images seen."""

    def __init__(self):
        self.images = 0

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        self.images += len(pixels)
        means = pixels.flatten(1).mean(1)
        return means.view(-1, 1, 1, 1).expand(-1, 2, 1, 3) * torch.arange(1.0, 4.0)


def test_each_image_is_computed_once_and_read_back_after():
    pixels, forward, cache = torch.randn(10, 3, 4, 4), CountingForward(), SourceLogitCache(limit_mib=1)
    first = cache.logits(pixels[:6], torch.arange(6), forward)
    assert forward.images == 6 and torch.equal(first, CountingForward()(pixels[:6]))
    again = cache.logits(pixels[:6], torch.arange(6), forward)
    assert forward.images == 6 and torch.equal(again, first)
    order = torch.tensor([9, 0, 7, 3, 8])  # a later epoch's batch: cached and new images mixed
    mixed = cache.logits(pixels[order], order, forward)
    assert forward.images == 6 + 3  # only 9, 7 and 8 are computed
    assert torch.equal(mixed, CountingForward()(pixels[order]))


def test_without_ids_every_batch_is_recomputed():
    pixels, forward, cache = torch.randn(4, 3, 4, 4), CountingForward(), SourceLogitCache(limit_mib=1)
    for _ in range(2):
        cache.logits(pixels, None, forward)
    assert forward.images == 8 and not cache.rows
    off = SourceLogitCache(limit_mib=0)
    off.logits(pixels, torch.arange(4), forward)
    assert forward.images == 12 and not off.rows


def test_past_the_bound_images_are_recomputed_and_it_is_said_once(capsys):
    pixels, forward = torch.randn(10, 3, 4, 4), CountingForward()
    row_bytes = 2 * 1 * 3 * 4  # [L, H, T] float32
    cache = SourceLogitCache(limit_mib=4 * row_bytes / 2**20)
    ids = torch.arange(10)
    for _ in range(3):
        out = cache.logits(pixels, ids, forward)
        assert torch.equal(out, CountingForward()(pixels))
    assert sorted(cache.rows) == [0, 1, 2, 3] and cache.used_bytes == 4 * row_bytes
    assert forward.images == 10 + 6 + 6
    assert capsys.readouterr().err.count("source_cache_mib") == 1


def gta_trial(model_dir, **overrides) -> Trial:
    values = dict(model=model_dir, zero_shot=[], probe_size=16, epochs=2, lr=1e-2, gta_lambda=1.0, batch_size=16,
                  data_fraction=0.25)
    return Trial(TrialConfig.from_dict({**values, **overrides}))


def test_cached_gta_loss_equals_the_recomputed_one(tiny_clip_dir):
    trial = gta_trial(tiny_clip_dir)
    phase = trial.phases[0]
    optimizer, scheduler = trial._start_phase(phase)
    pixels, labels, ids = next(trial.task.train.batches(16))
    x = normalise(pixels, trial.mean, trial.std)
    trial.step(phase, optimizer, scheduler, x, labels)  # the tuned tower moves away from the source
    recomputed, logs = phase.loss(trial.model, x, labels)
    assert float(logs["train/gta_penalty"]) > 1e-8
    filled = phase.loss(trial.model, x, labels, ids=ids)[0]
    cached = phase.loss(trial.model, x, labels, ids=ids)[0]
    assert filled.item() == pytest.approx(recomputed.item(), rel=1e-6)
    assert cached.item() == pytest.approx(recomputed.item(), rel=1e-6)
    cached.backward()  # gradients flow through the tuned side only
    assert trial.model.head.linear.weight.grad is not None


def test_a_trial_trains_the_same_with_and_without_the_cache(tiny_clip_dir):
    reports = {}
    for mib in (0.0, 64.0):
        trial = gta_trial(tiny_clip_dir, source_cache_mib=mib, epochs=3)
        reports[mib] = []
        trial.run(lambda metrics, _ckpt, out=reports[mib]: out.append(dict(metrics)))
    for uncached, cached in zip(reports[0.0][1:], reports[64.0][1:], strict=True):
        for key in ("train/loss", "train/gta_penalty", "val/acc"):
            assert cached[key] == pytest.approx(uncached[key], rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("augment", [False, True])
def test_the_trial_gives_ids_only_where_inputs_repeat(tiny_clip_dir, augment):
    trial = gta_trial(tiny_clip_dir)
    trial.task.augment = augment
    phase = trial.phases[0]
    seen, loss = [], phase.loss
    phase.loss = lambda model, x, y, **extra: (seen.append(extra.get("ids")), loss(model, x, y, **extra))[1]
    optimizer, scheduler = trial._start_phase(phase)
    trial._train_epoch(phase, optimizer, scheduler, 1)
    if augment:
        assert seen and all(ids is None for ids in seen)
    else:
        assert sorted(torch.cat(seen).tolist()) == list(range(len(trial.task.train)))

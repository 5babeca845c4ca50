"""Each regulariser's penalty against a direct numpy computation on a small tensor, and the box setup check."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from trainables.errors import ConfigError
from trainables.methods import apr, box, entropy_floor
from trainables.methods.regularise import Setup

SETUP = Setup(num_layers=2, grid=(2, 2), patch_size=4, has_boxes=True)


class Step:
    """A StepAttention stand-in: fixed [L, B, H, N] logits for the tuned and source towers, and boxes."""

    def __init__(self, tuned, source=None, boxes=None):
        self._tuned, self._source, self.boxes = tuned, source, boxes

    def tuned(self, layers=None):
        return self._tuned if layers is None else self._tuned[layers]

    def source(self, layers=None):
        return self._source if layers is None else self._source[layers]


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def logits(seed):
    return torch.randn(2, 3, 2, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # L, B, H, N


def test_apr_is_lambda_times_the_mean_kl_of_tuned_to_source():
    tuned, source = logits(0), logits(1)
    p, q = softmax(tuned.numpy()), softmax(source.numpy())
    expected = 0.3 * np.mean(np.sum(p * np.log(p / q), -1))
    got = apr.penalty(SimpleNamespace(apr_lambda=0.3), SETUP)(Step(tuned, source))
    assert float(got) == pytest.approx(expected, rel=1e-10)
    assert float(apr.penalty(SimpleNamespace(apr_lambda=1.0), SETUP)(Step(tuned, tuned))) == pytest.approx(0, abs=1e-12)


def test_entropy_floor_is_the_mean_hinge_below_rho_times_the_source_entropy():
    source = logits(2)
    tuned = source * torch.linspace(0.5, 6, 12, dtype=torch.float64).view(2, 3, 2, 1)  # some sharper, some flatter
    h = lambda z: -np.sum(softmax(z) * np.log(softmax(z)), -1)
    hinge = np.maximum(0.8 * h(source.numpy()) - h(tuned.numpy()), 0)
    assert 0 < (hinge > 0).sum() < hinge.size  # the case exercises both sides of the hinge
    config = SimpleNamespace(entropy_floor_lambda=2.0, entropy_floor_ratio=0.8)
    got = entropy_floor.penalty(config, SETUP)(Step(tuned, source))
    assert float(got) == pytest.approx(2.0 * hinge.mean(), rel=1e-10)


@pytest.mark.parametrize("target,loss", [("hard", "bce"), ("hard", "mse"), ("soft", "bce"), ("soft", "mse")])
def test_box_penalty_against_numpy(target, loss):
    # A 2x2 grid of 4-pixel patches: box 0 covers patch 0 and half of patch 1, box 1 a quarter of patch 3,
    # box 2 the bottom row.
    boxes = torch.tensor([[0.0, 0.0, 6.0, 4.0], [6.0, 6.0, 8.0, 8.0], [0.0, 4.0, 8.0, 8.0]])
    cover = np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.25], [0.0, 0.0, 1.0, 1.0]])
    weight = (cover > 0).astype(float) if target == "hard" else cover
    t = weight / weight.sum(-1, keepdims=True)
    z = logits(3)
    p = softmax(z.numpy()[-1]).mean(1)  # last layer, heads averaged: [B, N]
    per_patch = (p - t) ** 2 if loss == "mse" else -(t * np.log(p) + (1 - t) * np.log(1 - p))
    config = SimpleNamespace(box_lambda=0.5, box_target=target, box_loss=loss, dataset="embedded/shade")
    got = box.penalty(config, SETUP)(Step(z.float(), boxes=boxes))
    assert float(got) == pytest.approx(0.5 * per_patch.mean(), rel=1e-5)


def test_box_needs_boxed_data_before_training():
    config = SimpleNamespace(box_lambda=0.5, box_target="hard", box_loss="bce", dataset="some/folder")
    with pytest.raises(ConfigError, match=r"^box_lambda: the dataset 'some/folder' has no object boxes"):
        box.penalty(config, Setup(2, (2, 2), 4, has_boxes=False))

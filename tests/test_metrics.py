"""Attention metrics against hand-computed values and invariants."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.metrics import (
    box_alignment,
    box_patch_mask,
    cls_patch_distribution,
    entropy,
    entropy_norm,
    gini,
    head_diversity,
    linear_cka,
    mass_fraction,
    mean_attention_distance,
    rollout,
    topk_mass,
)

NS = [1, 2, 4, 7, 20, 49, 100, 196]
# 4-element example, deliberately unsorted: sorted descending it is 0.4, 0.3, 0.2, 0.1.
P4 = torch.tensor([0.2, 0.4, 0.1, 0.3], dtype=torch.float64)


def uniform(n: int, dtype=torch.float32) -> torch.Tensor:
    return torch.full((n,), 1.0 / n, dtype=dtype)


def one_hot(n: int, i: int = 0, dtype=torch.float32) -> torch.Tensor:
    p = torch.zeros(n, dtype=dtype)
    p[i] = 1.0
    return p


# --- distribution-shape metrics ------------------------------------------------------------


def test_cls_patch_distribution_drops_cls_and_renormalises():
    row = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.0, 0.9]])
    assert torch.allclose(cls_patch_distribution(row), torch.tensor([[0.6, 0.4], [0.0, 1.0]]))
    # All mass on CLS: documented fallback is uniform over patches.
    assert torch.equal(cls_patch_distribution(torch.tensor([1.0, 0.0, 0.0, 0.0])), torch.full((3,), 1 / 3))


@pytest.mark.parametrize("n", NS)
def test_uniform(n):
    p = uniform(n)
    assert entropy(p).item() == pytest.approx(math.log(n), abs=1e-5)
    assert entropy_norm(p).item() == pytest.approx(1.0 if n > 1 else 0.0, abs=1e-5)
    assert gini(p).item() == pytest.approx(0.0, abs=1e-6)
    assert topk_mass(p, 1).item() == pytest.approx(1.0 / n)


@pytest.mark.parametrize("n", NS)
def test_one_hot(n):
    p = one_hot(n, n // 2)
    assert entropy(p).item() == 0.0  # 0·log 0 = 0, not NaN
    assert entropy_norm(p).item() == 0.0
    assert mass_fraction(p).item() == pytest.approx(1.0 / n)
    assert gini(p).item() == pytest.approx((n - 1) / n)
    assert topk_mass(p, 1).item() == 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("q_pct", [50, 80, 90, 95, 99])
def test_mass_fraction_uniform_is_exact(dtype, q_pct):
    # Without round-off slack, e.g. q = 0.5, N = 12 in float64 gives 7/12 instead of 6/12.
    for n in range(1, 201):
        k_expected = -(-q_pct * n // 100)  # ceil(q n) in integers, free of float round-off
        got = mass_fraction(uniform(n, dtype), q=q_pct / 100).item()
        assert not math.isnan(got)
        assert round(got * n) == k_expected, n
        assert got == pytest.approx(k_expected / n, abs=1e-7)
    assert round(mass_fraction(uniform(20, dtype)).item() * 20) == 19
    assert round(mass_fraction(uniform(10, dtype), q=0.9).item() * 10) == 9


def test_four_element_example():
    # H = -(0.4 ln 0.4 + 0.3 ln 0.3 + 0.2 ln 0.2 + 0.1 ln 0.1) = 1.279854...
    assert entropy(P4).item() == pytest.approx(1.2798542258, abs=1e-9)
    assert entropy_norm(P4).item() == pytest.approx(1.2798542258 / math.log(4), abs=1e-9)
    # Ascending 0.1, 0.2, 0.3, 0.4: Σ i·a = 0.1+0.4+0.9+1.6 = 3.0; G = 2·3/4 - 5/4 = 0.25.
    assert gini(P4).item() == pytest.approx(0.25)
    # Descending cumsum 0.4, 0.7, 0.9, 1.0.
    assert mass_fraction(P4, q=0.95).item() == 1.0
    assert mass_fraction(P4, q=0.9).item() == 0.75  # 0.9 reached exactly (up to round-off)
    assert mass_fraction(P4, q=0.5).item() == 0.5
    assert mass_fraction(P4, q=0.4).item() == 0.25
    assert mass_fraction(P4, q=0.3).item() == 0.25
    assert topk_mass(P4, 1).item() == pytest.approx(0.4)
    assert topk_mass(P4, 2).item() == pytest.approx(0.7)
    assert topk_mass(P4, 4).item() == pytest.approx(1.0)


def test_batched_shapes_and_range():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 3, 49, generator=g).softmax(-1)
    for f in (entropy, entropy_norm, mass_fraction, gini):
        assert f(p).shape == (2, 3)
    mf = mass_fraction(p)
    assert ((mf >= 1 / 49) & (mf <= 1)).all()
    assert topk_mass(p, 5).shape == (2, 3)
    assert ((gini(p) >= 0) & (gini(p) <= 48 / 49)).all()


def test_mass_fraction_rejects_bad_q():
    with pytest.raises(ValueError):
        mass_fraction(uniform(4), q=0.0)


# --- head diversity ------------------------------------------------------------------------


def test_head_diversity():
    p = uniform(5).expand(2, 4, 5)
    assert head_diversity(p).item() == pytest.approx(0.0, abs=1e-6)  # identical heads
    heads = torch.stack([one_hot(5, i) for i in range(3)])[None]  # [1, 3, 5]
    assert head_diversity(heads).item() == pytest.approx(1.0)  # orthogonal heads
    assert head_diversity(uniform(5)[None, None]).item() == 0.0  # H = 1
    # cos([1, 0], [1/2, 1/2]) = 1/√2.
    two = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    assert head_diversity(two).item() == pytest.approx(1 - 1 / math.sqrt(2))


def test_head_diversity_averages_batch_first():
    # Per example the two heads are orthogonal, but their batch-mean maps are identical.
    e0, e1 = one_hot(3, 0), one_hot(3, 1)
    p = torch.stack([torch.stack([e0, e1]), torch.stack([e1, e0])])  # [B=2, H=2, N=3]
    assert head_diversity(p).item() == pytest.approx(0.0, abs=1e-6)


# --- rollout -------------------------------------------------------------------------------


def test_rollout_identity_attention_is_uniform():
    eye = torch.eye(5).expand(2, 3, 5, 5)
    out = rollout([eye, eye, eye])
    assert out.shape == (2, 4)
    assert torch.equal(out, torch.full((2, 4), 0.25))  # R = I: no patch mass -> uniform


def test_rollout_two_layers_hand_computed():
    # Layer 1: head a sends CLS to token 1, head b to token 2; other rows identity.
    a = torch.eye(3)
    a[0] = torch.tensor([0.0, 1.0, 0.0])
    b = torch.eye(3)
    b[0] = torch.tensor([0.0, 0.0, 1.0])
    layer1 = torch.stack([a, b])[None]  # mean_h = [[0, ½, ½], [0, 1, 0], [0, 0, 1]]
    # Layer 2 (one head): tokens 0 and 1 swap, token 2 stays.
    layer2 = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])[None, None]
    # M1 = [[½, ¼, ¼], [0, 1, 0], [0, 0, 1]]; M2 = [[½, ½, 0], [½, ½, 0], [0, 0, 1]].
    # Row 0 of M2·M1 = ½·[½, ¼, ¼] + ½·[0, 1, 0] = [¼, ⅝, ⅛] -> patches [⅝, ⅛] / ¾ = [5/6, 1/6].
    # (The wrong order M1·M2 would give [3/5, 2/5].)
    out = rollout([layer1, layer2])
    assert torch.allclose(out, torch.tensor([[5 / 6, 1 / 6]]))


# --- CKA -----------------------------------------------------------------------------------


def test_linear_cka_invariances():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    assert isinstance(linear_cka(x, x), float)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x.double() @ q) == pytest.approx(1.0, abs=1e-9)  # orthogonal
    assert linear_cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-9)  # isotropic scaling
    assert linear_cka(x, x + 5.0) == pytest.approx(1.0, abs=1e-9)  # centring removes offsets
    assert linear_cka(x, torch.ones(300, 3)) == 0.0  # constant features: documented 0


def test_linear_cka_independent_features_near_zero():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5000, 10, generator=g)
    y = torch.randn(5000, 10, generator=g)
    assert 0.0 <= linear_cka(x, y) < 0.05


# --- mean attention distance ---------------------------------------------------------------


def test_mad_self_attention_is_zero():
    attn = torch.eye(10).expand(2, 3, 10, 10)  # 3x3 grid + CLS
    mad = mean_attention_distance(attn, (3, 3), 16)
    assert mad.shape == (2, 3)
    assert torch.allclose(mad, torch.zeros(2, 3))


def test_mad_2x2_uniform_to_others():
    # Each patch query: 0.4 on CLS (dropped), 0.2 on each other patch -> ⅓ each after renorm.
    # Distances to the other three patches: 16, 16, 16√2 px -> MAD = 16(2 + √2)/3.
    attn = torch.zeros(1, 1, 5, 5)
    attn[..., 0, 0] = 1.0
    for i in range(1, 5):
        attn[0, 0, i] = 0.2
        attn[0, 0, i, 0] = 0.4
        attn[0, 0, i, i] = 0.0
    mad = mean_attention_distance(attn, (2, 2), 16)
    assert mad.item() == pytest.approx(16 * (2 + math.sqrt(2)) / 3, rel=1e-6)


def test_mad_row_major_rectangular_grid():
    # 2 rows x 3 cols; patch 0 = (row 0, col 0) attends to patch 5 = (row 1, col 2): √5·ps.
    attn = torch.eye(7)[None, None].clone()
    attn[0, 0, 1] = 0.0
    attn[0, 0, 1, 6] = 1.0
    mad = mean_attention_distance(attn, (2, 3), 14)
    assert mad.item() == pytest.approx(math.sqrt(5) * 14 / 6, rel=1e-6)
    with pytest.raises(ValueError):
        mean_attention_distance(attn, (3, 3), 14)


# --- box alignment -------------------------------------------------------------------------


def test_box_patch_mask_row_major_and_exclusive_edges():
    # 2x3 grid of 16 px patches; box covers exactly patch (row 1, col 2) = index 5.
    boxes = torch.tensor([[32.0, 16.0, 48.0, 32.0]])
    assert box_patch_mask(boxes, (2, 3), 16).tolist() == [[False] * 5 + [True]]
    # A box touching the neighbour only along an edge does not claim it.
    edge = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    assert box_patch_mask(edge, (2, 3), 16).tolist() == [[True] + [False] * 5]


def test_box_alignment():
    grid, ps = (2, 2), 16
    exact = torch.tensor([[16.0, 0.0, 32.0, 16.0]] * 2)  # exactly patch 1
    p = torch.stack([one_hot(4, 1), one_hot(4, 2)])
    assert box_alignment(p, exact, grid, ps).tolist() == [1.0, 0.0]
    # Straddles the boundary between patches 0 and 1 (x 8..24 in the top row).
    straddle = torch.tensor([[8.0, 0.0, 24.0, 16.0]])
    assert box_patch_mask(straddle, grid, ps).tolist() == [[True, True, False, False]]
    assert box_alignment(uniform(4)[None], straddle, grid, ps).item() == pytest.approx(0.5)
    assert box_alignment(torch.tensor([[0.1, 0.2, 0.3, 0.4]]), straddle, grid, ps).item() == pytest.approx(0.3)
    # [B, H, N]: heads averaged first -> [½, ½, 0, 0] -> all mass on the box.
    heads = torch.stack([one_hot(4, 0), one_hot(4, 1)])[None]
    assert box_alignment(heads, straddle, grid, ps).item() == pytest.approx(1.0)

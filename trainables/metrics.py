"""Attention metrics: pure functions on torch tensors describing where a ViT looks.

``p`` is always a [..., N] distribution over N image patches (usually the [CLS]->patch
attention row with the CLS column dropped and renormalised); full attention maps are
[B, H, T, T] with CLS first and T = N + 1. Patches are numbered row-major over a
(rows, cols) grid: index = row * cols + col. No model code, no I/O.

Conventions shared by every function here:
- renormalising a row with zero mass returns the uniform distribution 1/N (an empty row
  carries no preference, and uniform keeps every downstream metric finite);
- results come back in the input dtype promoted to at least float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Slack for cumulative-sum round-off in mass_fraction: a uniform N=20 cumsum can land at
# 0.9499999... instead of 0.95 and must still count as having reached q = 0.95.
_MASS_TOL = 1e-6


def _float(x: torch.Tensor) -> torch.Tensor:
    # Half / bfloat16 / integer inputs lose too much in sums and logs; float64 stays float64.
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _renorm(x: torch.Tensor) -> torch.Tensor:
    """x / Σ_j x_j along the last dim; rows with Σ_j x_j = 0 become uniform 1/N."""
    x = _float(x)
    s = x.sum(-1, keepdim=True)
    uniform = torch.full_like(x, 1.0 / x.shape[-1])
    return torch.where(s > 0, x / torch.where(s > 0, s, torch.ones_like(s)), uniform)


def cls_patch_distribution(attn_row: torch.Tensor) -> torch.Tensor:
    """p_j = a_j / Σ_{k≥1} a_k for j = 1..T-1 (drop the CLS column 0): [..., T] -> [..., T-1]."""
    return _renorm(attn_row[..., 1:])


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -Σ_j p_j ln p_j in nats, with 0·ln 0 = 0: [..., N] -> [...]."""
    p = _float(p)
    return -torch.special.xlogy(p, p).sum(-1)


def entropy_norm(p: torch.Tensor) -> torch.Tensor:
    """H(p) / ln N, in [0, 1] for a distribution; defined as 0 when N = 1 (ln 1 = 0)."""
    n = p.shape[-1]
    h = entropy(p)
    return h / math.log(n) if n > 1 else torch.zeros_like(h)


def mass_fraction(p: torch.Tensor, q: float = 0.95) -> torch.Tensor:
    """k*/N with k* = min{k : Σ_{i≤k} p_(i) ≥ q·Σ p}, p_(1) ≥ p_(2) ≥ … (descending): [..., N] -> [...].

    The cumulative sum is taken in float64 and divided by its own total, and reaching q
    allows a slack of 1e-6, so round-off can neither add a patch nor give N+1 or NaN.
    The result is clamped to [1/N, 1].
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q}")
    n = p.shape[-1]
    cum = p.to(torch.float64).sort(-1, descending=True).values.cumsum(-1)
    total = cum[..., -1:]
    cum = cum / torch.where(total > 0, total, torch.ones_like(total))
    # Patches still short of q, plus the one that crosses it.
    k = (cum < q - _MASS_TOL).sum(-1) + 1
    frac = k.clamp(1, n).to(torch.float64) / n
    return frac.to(_float(p).dtype)


def gini(p: torch.Tensor) -> torch.Tensor:
    """G = 2 Σ_i i·a_(i) / (N Σ_i a_i) - (N+1)/N, a_(1) ≤ … ≤ a_(N) ascending: [..., N] -> [...].

    Uniform -> 0, one-hot -> (N-1)/N. An all-zero row is defined as 0 (perfectly even).
    """
    a = _float(p).sort(-1).values
    n = a.shape[-1]
    i = torch.arange(1, n + 1, dtype=a.dtype, device=a.device)
    s = a.sum(-1)
    g = 2 * (i * a).sum(-1) / (n * torch.where(s > 0, s, torch.ones_like(s))) - (n + 1) / n
    return torch.where(s > 0, g, torch.zeros_like(g))


def topk_mass(p: torch.Tensor, k: int) -> torch.Tensor:
    """Σ_{i≤k} p_(i), the k largest weights (descending order): [..., N] -> [...]."""
    return _float(p).topk(k, dim=-1).values.sum(-1)


def head_diversity(p_bhn: torch.Tensor) -> torch.Tensor:
    """1 - mean_{h<h'} cos(p̄_h, p̄_h'), with p̄_h = mean_b p_bh: [B, H, N] -> scalar; H = 1 -> 0."""
    p = _float(p_bhn).mean(0)  # batch first, so the heads' typical maps are compared
    h = p.shape[0]
    if h < 2:
        return p.new_zeros(())
    u = F.normalize(p, dim=-1)
    cos = u @ u.T
    iu = torch.triu_indices(h, h, offset=1, device=p.device)
    return 1 - cos[iu[0], iu[1]].mean()


def rollout(attentions: list[torch.Tensor]) -> torch.Tensor:
    """CLS row over patches of R = M_L ⋯ M_1, M_l = ½·mean_h A_l + ½·I, renormalised: -> [B, T-1].

    The ½·I term accounts for the residual stream (Abnar & Zuidema, 2020). If the CLS row
    of R has no mass on patches (e.g. identity attention gives R = I), the result is the
    uniform distribution 1/(T-1), per the module's zero-mass convention.
    """
    if not attentions:
        raise ValueError("rollout needs at least one layer")
    r = None
    for a in attentions:
        a = _float(a).mean(1)  # [B, T, T]
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        m = 0.5 * a + 0.5 * eye
        r = m if r is None else m @ r  # later layers on the left
    return _renorm(r[:, 0, 1:])


def _patch_centres(grid: tuple[int, int], patch_size: float, device=None) -> torch.Tensor:
    """(x, y) pixel centres of the patches in row-major order: [rows·cols, 2], float64."""
    rows, cols = grid
    r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device),
                          indexing="ij")
    xy = torch.stack([c.reshape(-1), r.reshape(-1)], -1).to(torch.float64)
    return (xy + 0.5) * patch_size


def mean_attention_distance(attn: torch.Tensor, grid: tuple[int, int], patch_size: float) -> torch.Tensor:
    """MAD = mean_i Σ_j â_ij·d_ij, â = patch-to-patch attention renormalised per query row,
    d_ij = Euclidean pixel distance between patch centres: [B, H, T, T] -> [B, H].

    A query row with no patch mass counts as uniform, per the module's convention.
    """
    n = attn.shape[-1] - 1
    if n != grid[0] * grid[1]:
        raise ValueError(f"T-1 = {n} patches but grid {grid} has {grid[0] * grid[1]}")
    a = _renorm(attn[..., 1:, 1:])
    c = _patch_centres(grid, patch_size, attn.device)
    d = torch.cdist(c, c).to(a.dtype)
    return (a * d).sum(-1).mean(-1)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA = ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred X [n, d1], Y [n, d2]; a Python float.

    Computed in float64. Defined as 0.0 when either side is constant (zero denominator).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows, y has {y.shape[0]}")
    x = x.to(torch.float64).reshape(x.shape[0], -1)
    y = y.to(torch.float64).reshape(y.shape[0], -1)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    denom = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    if denom == 0:
        return 0.0
    return float(torch.linalg.matrix_norm(x.T @ y) ** 2 / denom)


def embedding_drift(before: torch.Tensor, after: torch.Tensor) -> float:
    """1 − mean_i cos(before_i, after_i) over paired rows [n, d] (e.g. pretrained vs tuned image
    embeddings of the same images); 0 when nothing moved, up to 2. Computed in float64."""
    if before.shape != after.shape:
        raise ValueError(f"before has shape {tuple(before.shape)}, after {tuple(after.shape)}")
    cos = F.cosine_similarity(before.to(torch.float64), after.to(torch.float64), dim=-1)
    return float(1.0 - cos.mean())


def box_patch_overlap(boxes: torch.Tensor, grid: tuple[int, int], patch_size: float) -> torch.Tensor:
    """c_bn = area(patch n's pixel square ∩ box_b) / patch_size²: boxes [B, 4] (x0, y0, x1, y1),
    x1/y1 exclusive -> float64 [B, rows·cols] in [0, 1], row-major.
    """
    lo = _patch_centres(grid, patch_size, boxes.device) - 0.5 * patch_size  # [N, 2] (x, y)
    hi = lo + patch_size
    b = boxes.to(torch.float64)[:, None, :]  # [B, 1, 4]
    ox = torch.minimum(b[..., 2], hi[:, 0]) - torch.maximum(b[..., 0], lo[:, 0])
    oy = torch.minimum(b[..., 3], hi[:, 1]) - torch.maximum(b[..., 1], lo[:, 1])
    return ox.clamp(min=0) * oy.clamp(min=0) / patch_size ** 2


def box_patch_mask(boxes: torch.Tensor, grid: tuple[int, int], patch_size: float) -> torch.Tensor:
    """m_bn = [patch n's pixel square ∩ box_b has positive area] (box_patch_overlap > 0): boxes [B, 4]
    (x0, y0, x1, y1), x1/y1 exclusive -> bool [B, rows·cols], row-major. Touching an edge does not count.
    """
    return box_patch_overlap(boxes, grid, patch_size) > 0


def box_alignment(p: torch.Tensor, boxes: torch.Tensor, grid: tuple[int, int],
                  patch_size: float) -> torch.Tensor:
    """Σ_n p_n·m_n / Σ_n p_n, m = box_patch_mask: p [B, N] or [B, H, N] (heads averaged first) -> [B]."""
    p = _float(p)
    if p.dim() == 3:
        p = p.mean(1)
    if p.shape[-1] != grid[0] * grid[1]:
        raise ValueError(f"p has {p.shape[-1]} patches but grid {grid} has {grid[0] * grid[1]}")
    m = box_patch_mask(boxes, grid, patch_size).to(p.dtype)
    s = p.sum(-1)
    return (p * m).sum(-1) / torch.where(s > 0, s, torch.ones_like(s))

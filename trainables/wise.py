"""WiSE-FT: interpolate a trained model back toward the pretrained one and measure every point.

    rows = wise_sweep(model, evaluator, zeroshot_head, alphas)   # one dict of metrics per α

θ(α) = (1 − α)·θ₀ + α·θ for every image-tower weight the trial trained (θ₀ pretrained, θ
trained; Wortsman et al. 2022). Written in this form so α = 0 gives θ₀ and α = 1 gives θ
bit for bit.
- LoRA moves through its scale: W₀ + α·s·B·A, exactly the interpolation of its effective
  weights (the base weights never train, so θ₀ is W₀).
- The head follows WiSE-FT: with `head_init: zeroshot` it is interpolated between the zero-shot
  head (CLIP's text classifier, bias 0) and the trained head. With a random initial head there
  is no pretrained head to return to, so the trained head is kept at every α: val/test accuracy
  at small α is then that head read on near-pretrained features.
- Parameters the pretrained model lacks and that are not LoRA (bottleneck adapters, say) have
  no θ₀; such a trial is refused with one line.
At each α the evaluator measures what it measures every epoch (val accuracy, attention and its
change, CKA, weight and embedding drift, zero-shot accuracy and retention) plus test accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables import keys
from trainables.drift import lora_layers, lora_parameter_ids, tower
from trainables.errors import ConfigError

ALPHA = "alpha"


class Interpolation:
    """Moves a trained model to θ(α) in place; `restore` puts the trained weights back."""

    def __init__(self, model: nn.Module, pretrained: dict[int, torch.Tensor],
                 zeroshot_head: dict[str, torch.Tensor] | None):
        parts = tower(model.clip_model())
        self.lora = lora_layers(parts)
        lora_ids = lora_parameter_ids(self.lora)
        params = {id(p): (n, p) for part in parts for n, p in part.named_parameters()}
        orphans = [n for i, (n, p) in params.items() if i not in pretrained and i not in lora_ids]
        if orphans:
            raise ConfigError(f"wise: {orphans[0]} (and {len(orphans) - 1} more) has no pretrained value to interpolate "
                              "from; WiSE-FT works on trials that tune tower weights (ft, lpft, ...) or LoRA")
        # Only weights that moved need touching; the pretrained copies are the evaluator's.
        self.tower = [(p, pretrained[i], p.detach().clone()) for i, (_, p) in params.items()
                      if i in pretrained and not torch.equal(p.detach(), pretrained[i].to(p.device))]
        self.scales = [(m, dict(m.scaling)) for m in self.lora]
        head = model.head.linear
        self.head = [] if zeroshot_head is None else [
            (head.weight, zeroshot_head["weight"], head.weight.detach().clone()),
            (head.bias, zeroshot_head["bias"], head.bias.detach().clone())]

    @torch.no_grad()
    def set(self, alpha: float) -> None:
        for p, start, end in (*self.tower, *self.head):
            p.copy_((1 - alpha) * start.to(p.device) + alpha * end)
        for module, scaling in self.scales:
            for name, scale in scaling.items():
                module.scaling[name] = alpha * scale

    def restore(self) -> None:
        self.set(1.0)


def wise_sweep(model: nn.Module, evaluator, zeroshot_head: dict[str, torch.Tensor] | None,
               alphas) -> list[dict[str, float]]:
    """One row per α: `alpha` and every measurement of θ(α); the model is restored to θ afterwards."""
    interpolation = Interpolation(model, evaluator.weight_drift.pretrained, zeroshot_head)
    rows = []
    try:
        for alpha in alphas:
            interpolation.set(alpha)
            # Always re-measured (never the cached pretrained reading), so α = 0 checks the interpolation.
            metrics = evaluator.run(model, evaluator.config.epochs, tower_moved=True)
            rows.append({ALPHA: float(alpha), **metrics, **evaluator.test_accuracy(model)})
    finally:
        interpolation.restore()
    return rows


def wise_metrics(rows: list[dict[str, float]]) -> list[tuple[int, dict[str, float]]]:
    """(MLflow step = round(100·α), {`wise/<key>`: value}) per row."""
    from trainables.wise_grid import alpha_step

    return [(alpha_step(r[ALPHA]), {keys.wise(k): v for k, v in r.items() if k != ALPHA}) for r in rows]

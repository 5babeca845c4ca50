"""What a trial measures each epoch: accuracy, attention drift, representation drift, zero-shot.

The pretrained baselines (attention metrics, [CLS] hidden states, zero-shot accuracy) are
measured once, when the Evaluator is built on the still-pretrained model (before a method
wraps or trains it), through exactly the functions later epochs use. Attention comes from
one SDPA forward over the fixed probe set with q/k hooks (trainables/attention.py); all
metric definitions live in trainables/metrics.py.

Keys (MLflow names): val/acc, test/acc, attn/<metric>/layer_<i>, attn/<metric>/mean,
attn/delta_<metric>_pct, repr/cka/layer_<i>, repr/cka/mean, zeroshot/<task>/acc,
zeroshot/<task>/retention. `attn/rollout_entropy/mean` is the entropy of the whole-network
rollout (one value, no per-layer keys).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F

from trainables import metrics as M
from trainables.attention import AttentionCapture
from trainables.config import ConfigError
from trainables.data import load_zero_shot, probe_indices
from trainables.models import text_classifier
from trainables.splits import Split, balanced_indices, normalise

LAYER_METRICS = ("entropy", "entropy_norm", "mass95", "gini", "topk", "head_diversity", "mad", "box_alignment")
ATTN_METRICS = LAYER_METRICS + ("rollout_entropy",)
EVAL_BATCH = 256


def metric_task_name(name: str) -> str:
    """A dataset name as one metric-key segment: `embedded/colour` -> `embedded_colour`,
    `uoft-cs/cifar100` -> `uoft-cs_cifar100`, a local path -> its file or folder name without suffix."""
    from pathlib import Path

    if not name.startswith("embedded/") and Path(name).exists():
        return Path(name).stem
    return name.replace("/", "_")


def reported_metric(name: str, config) -> bool:
    """Whether a trial under `config` reports the metric `name` (for validating search objectives)."""
    if name in ("val/acc", "test/acc", "train/loss", "repr/cka/mean", "time/train_s"):
        return True
    if name == "train/gta_penalty":
        return config.gta_lambda > 0
    metric_alt = "|".join(ATTN_METRICS)
    tasks = "|".join(re.escape(metric_task_name(t)) for t in config.zero_shot) or "(?!)"
    patterns = (rf"attn/({metric_alt})/(mean|layer_\d+)", rf"attn/delta_({metric_alt})_pct", r"repr/cka/layer_\d+",
                rf"zeroshot/({tasks})/(acc|retention)")
    return any(re.fullmatch(p, name) for p in patterns)


class Evaluator:
    """Built on the pretrained model (which fixes the baselines); `run(model, epoch)` -> flat metrics."""

    def __init__(self, model, task, config, loaded, mean, std, device):
        self.config, self.task, self.device = config, task, device
        self.mean, self.std = mean, std
        vision = loaded.model.config.vision_config
        self.patch = vision.patch_size
        self.grid = (vision.image_size // vision.patch_size,) * 2
        probe = task.val.subset(probe_indices(task.val, config.probe_size))
        self.probe_pixels = probe.pixels
        self.probe_x = normalise(probe.pixels.to(device), mean, std)
        self.probe_boxes = None if probe.boxes is None else probe.boxes.to(device)
        self.topk = max(1, round(0.1 * self.grid[0] * self.grid[1]))  # mass on the top 10% of patches
        self.zero_shot = self._zero_shot_tasks(loaded)
        model.eval()
        self.baseline_attn, self.baseline_cls, self.baseline_maps = self._attention(model)
        self.baseline_zs = {name: self._zero_shot_acc(model, *zs) for name, zs in self.zero_shot.items()}
        self.last_maps = self.baseline_maps
        self.last_layers = {}

    def _zero_shot_tasks(self, loaded) -> dict[str, tuple[torch.Tensor, Split]]:
        if self.config.zero_shot and loaded.tokenizer is None:
            raise ConfigError(f"zero_shot: {self.config.model!r} has no tokenizer, so its text tower cannot be "
                              "read; pass zero_shot none (--zero-shot none)")
        tasks = {}
        for name in self.config.zero_shot:
            classes, templates, split = load_zero_shot(name, loaded.image_processor)
            if self.config.zeroshot_size and self.config.zeroshot_size < len(split):
                split = split.subset(balanced_indices(split.labels.numpy(), total=self.config.zeroshot_size))
            # The text tower is frozen in every method, so the classifier is built once per trial.
            classifier = text_classifier(loaded.model, loaded.tokenizer, classes, templates, "cpu").to(self.device)
            tasks[metric_task_name(name)] = (classifier, split)
        return tasks

    # ---- measurements ---------------------------------------------------------------------
    @torch.no_grad()
    def _attention(self, model) -> tuple[dict[str, list[float]], list[torch.Tensor], torch.Tensor]:
        """Per-layer attention metrics, per-layer [CLS] states, and head-averaged CLS maps on the probe set."""
        clip = model.clip_model()
        with AttentionCapture(clip) as cap:
            out = clip.vision_model(pixel_values=self.probe_x, output_hidden_states=True)
        probs = cap.probabilities()
        cls_states = [h[:, 0].float() for h in out.hidden_states[1:]]
        values: dict[str, list[float]] = {name: [] for name in LAYER_METRICS}
        maps = []
        for attn in probs:
            p = M.cls_patch_distribution(attn[:, :, 0, :])  # [B, H, N]
            maps.append(p.mean(1))
            values["entropy"].append(M.entropy(p).mean().item())
            values["entropy_norm"].append(M.entropy_norm(p).mean().item())
            values["mass95"].append(M.mass_fraction(p, 0.95).mean().item())
            values["gini"].append(M.gini(p).mean().item())
            values["topk"].append(M.topk_mass(p, self.topk).mean().item())
            values["head_diversity"].append(float(M.head_diversity(p)))
            values["mad"].append(M.mean_attention_distance(attn, self.grid, self.patch).mean().item())
            if self.probe_boxes is not None:
                values["box_alignment"].append(M.box_alignment(p, self.probe_boxes, self.grid, self.patch).mean().item())
        if self.probe_boxes is None:
            del values["box_alignment"]
        values["rollout_entropy"] = [M.entropy(M.rollout(probs)).mean().item()]
        return values, cls_states, torch.stack(maps, 1).cpu()

    @torch.no_grad()
    def _percent_correct(self, logits_of, split: Split) -> float:
        """Top-1 accuracy (%) of `logits_of(normalised pixels)` over a split, in evaluation batches."""
        correct = 0
        for pixels, labels, _ in split.batches(EVAL_BATCH):
            logits = logits_of(normalise(pixels.to(self.device), self.mean, self.std))
            correct += int((logits.argmax(-1).cpu() == labels).sum())
        return 100.0 * correct / len(split)

    def _zero_shot_acc(self, model, classifier: torch.Tensor, split: Split) -> float:
        return self._percent_correct(lambda x: F.normalize(model.embed(x).float(), dim=-1) @ classifier.T, split)

    def accuracy(self, model, split: Split) -> float:
        model.eval()
        return self._percent_correct(model, split)

    # ---- per epoch --------------------------------------------------------------------------
    def run(self, model, epoch: int) -> dict[str, float]:
        """val/acc every epoch; attention, representation and zero-shot metrics every `eval_every` epochs."""
        model.eval()
        out = {"val/acc": self.accuracy(model, self.task.val)}
        if epoch % self.config.eval_every and epoch != self.config.epochs:
            return out
        values, cls_states, self.last_maps = self._attention(model)
        self.last_layers = values
        for name, per_layer in values.items():
            if name != "rollout_entropy":
                out.update({f"attn/{name}/layer_{i}": v for i, v in enumerate(per_layer)})
            mean, base = float(np.mean(per_layer)), float(np.mean(self.baseline_attn[name]))
            out[f"attn/{name}/mean"] = mean
            out[f"attn/delta_{name}_pct"] = 100.0 * (mean - base) / abs(base) if base else 0.0
        cka = [M.linear_cka(a, b) for a, b in zip(cls_states, self.baseline_cls)]
        out.update({f"repr/cka/layer_{i}": v for i, v in enumerate(cka)})
        out["repr/cka/mean"] = float(np.mean(cka))
        for name, (classifier, split) in self.zero_shot.items():
            acc = self._zero_shot_acc(model, classifier, split)
            base = self.baseline_zs[name]
            out[f"zeroshot/{name}/acc"] = acc
            out[f"zeroshot/{name}/retention"] = 100.0 * acc / base if base else math.nan
        return out

    def test_accuracy(self, model) -> dict[str, float]:
        return {"test/acc": self.accuracy(model, self.task.test)}

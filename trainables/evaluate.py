"""What a trial measures each epoch: accuracy, attention drift, representation drift, zero-shot.

    evaluator = Evaluator(task, config, loaded, mean, std, device)
    evaluator.measure_baseline(model)     # once, on the pretrained model
    metrics = evaluator.run(model, epoch)  # flat {key: value}, keys from trainables/keys.py

Attention comes from one SDPA forward over the fixed probe set with q/k hooks
(trainables/attention.py); each attention metric is one line of ATTENTION_METRICS, a function
of one layer's `View` (or, for whole-network metrics, of all layers) whose result is averaged
over the probe set. Definitions live in trainables/metrics.py. The pretrained baselines
(attention, [CLS] states, zero-shot accuracy) go through exactly the functions later epochs use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from trainables import keys
from trainables import metrics as M
from trainables.attention import AttentionCapture
from trainables.data import load_zero_shot, probe_indices
from trainables.drift import WeightDrift
from trainables.errors import ConfigError
from trainables.figures import AttentionSnapshot
from trainables.methods import active_regularisers
from trainables.models import text_classifier
from trainables.splits import Split, balanced_indices, normalise

# Evaluation batch: large on a GPU; on a CPU, 64 images keep a layer's activations in cache. The tiny
# tower evaluates 1.4x (two threads) to 1.9x (one thread, a Ray trial's share) faster at 64 than at 256:
# `python -m benchmarks --only eval_batch`.
EVAL_BATCH = {"cuda": 256, "cpu": 64}
PROBE_ZEROSHOT = 128  # zero-shot images per task in the stop rule's between-epoch probe
# Ray reuses a worker for many trials that start from the same checkpoint: the pretrained model's
# zero-shot accuracy on a fixed split is measured once per process, not once per trial.
_PRETRAINED_ZERO_SHOT: dict[tuple, float] = {}
# Likewise its validation embeddings: epoch 0 (and a linear probe's epochs) read val through the untouched
# pretrained tower, so a worker embeds val once per checkpoint, dataset and device, in evaluation batches, and
# each trial applies its own head to them (the logits `model(x)` gives, batch for batch).
_PRETRAINED_VAL_EMBEDDINGS: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}


@dataclass(frozen=True)
class View:
    """What an attention metric reads: one layer's attention on the probe set, and the probe's geometry."""

    p: torch.Tensor  # [B, H, N] CLS->patch distribution (CLS column dropped, renormalised)
    attn: torch.Tensor  # [B, H, T, T] full attention probabilities of this layer
    layers: list[torch.Tensor]  # every layer's [B, H, T, T], for whole-network metrics
    grid: tuple[int, int]
    patch: int
    topk: int  # patches in the top 10%
    boxes: torch.Tensor | None  # [B, 4] object boxes, when the data has them


@dataclass(frozen=True)
class AttentionMetric:
    of: Callable[[View], torch.Tensor]  # averaged over whatever dims it returns
    per_layer: bool = True  # False: one value for the whole network (only its `mean` key)
    needs_boxes: bool = False


ATTENTION_METRICS: dict[str, AttentionMetric] = {
    "entropy": AttentionMetric(lambda v: M.entropy(v.p)),
    "entropy_norm": AttentionMetric(lambda v: M.entropy_norm(v.p)),
    "mass95": AttentionMetric(lambda v: M.mass_fraction(v.p, 0.95)),
    "gini": AttentionMetric(lambda v: M.gini(v.p)),
    "topk": AttentionMetric(lambda v: M.topk_mass(v.p, v.topk)),
    "head_diversity": AttentionMetric(lambda v: M.head_diversity(v.p)),
    "mad": AttentionMetric(lambda v: M.mean_attention_distance(v.attn, v.grid, v.patch)),
    "box_alignment": AttentionMetric(lambda v: M.box_alignment(v.p, v.boxes, v.grid, v.patch), needs_boxes=True),
    "rollout_entropy": AttentionMetric(lambda v: M.entropy(M.rollout(v.layers)), per_layer=False),
}
ALWAYS_REPORTED = frozenset({keys.VAL_ACC, keys.TEST_ACC, keys.TRAIN_LOSS, keys.cka(), keys.TRAIN_S,
                             keys.WEIGHT_DRIFT, keys.EMBEDDING_DRIFT, keys.TRAINABLE, keys.TRAINABLE_PCT})


def reported_metric(name: str, config) -> bool:
    """Whether a trial under `config` reports the metric `name` (for validating search objectives)."""
    key = keys.parse(name)
    if key is None:
        return False
    if key.best:
        return str(key) == keys.BEST_EPOCH or reported_metric(str(key).removeprefix(keys.BEST), config)
    if key.kind == "fixed":
        return name in ALWAYS_REPORTED
    if key.kind in ("attn", "attn_delta"):
        metric = ATTENTION_METRICS.get(key.metric)
        return metric is not None and (key.layer is None or metric.per_layer)
    if key.kind == "zeroshot":
        return key.subject in {keys.task_segment(t) for t in config.zero_shot}
    if key.kind == "penalty":
        return key.subject in active_regularisers(config)
    return key.kind == "cka"


@dataclass
class Reading:
    """One attention pass over the probe set."""

    values: dict[str, list[float]]  # attention metric -> per-layer values (one value if whole-network)
    cls: list[torch.Tensor]  # [CLS] hidden state after each layer
    maps: torch.Tensor  # head-averaged CLS->patch maps [B, L, N], on the CPU
    embedding: torch.Tensor  # projected image embeddings [B, D] of the probe set


def _percent(logits_and_labels, total: int) -> float:
    """Top-1 accuracy (%) over (logits, labels) batches that cover `total` items."""
    return 100.0 * sum(int((logits.argmax(-1).cpu() == labels).sum()) for logits, labels in logits_and_labels) / total


def _pct_change(value: float, base: float) -> float:
    """% change against the pretrained value (0 when the pretrained value is 0)."""
    return 100.0 * (value - base) / abs(base) if base else 0.0


class Evaluator:
    """Measures a model on the trial's splits; `measure_baseline` once on the pretrained model, then `run`."""

    def __init__(self, task, config, loaded, mean, std, device):
        self.config, self.task, self.device = config, task, device
        self.eval_batch = EVAL_BATCH.get(device.type, EVAL_BATCH["cpu"])
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
        # The stop rule's between-epoch probe reads a fixed class-balanced few of each zero-shot split.
        self.probe_zero_shot = {name: (classifier, split.subset(balanced_indices(
            split.labels.numpy(), total=min(PROBE_ZEROSHOT, len(split))))) for name, (classifier, split)
            in self.zero_shot.items()}
        self.baseline_probe_zs: dict[str, float] = {}
        self.baseline: Reading | None = None
        self.baseline_zs: dict[str, float] = {}
        self.latest: Reading | None = None
        self.weight_drift: WeightDrift | None = None

    def _zero_shot_tasks(self, loaded) -> dict[str, tuple[torch.Tensor, Split]]:
        if self.config.zero_shot and loaded.tokenizer is None:
            raise ConfigError(f"zero_shot: {self.config.model!r} has no tokenizer, so its text tower cannot be "
                              "read; pass zero_shot none (--zero-shot none)")
        tasks = {}
        for name in self.config.zero_shot:
            classes, templates, split = load_zero_shot(name, loaded.image_processor)
            if self.config.zeroshot_templates == "first":
                templates = templates[:1]
            if self.config.zeroshot_size and self.config.zeroshot_size < len(split):
                split = split.subset(balanced_indices(split.labels.numpy(), total=self.config.zeroshot_size))
            # The text tower is frozen in every method, so the classifier is built once per trial.
            classifier = text_classifier(loaded.model, loaded.tokenizer, classes, templates, "cpu").to(self.device)
            tasks[keys.task_segment(name)] = (classifier, split)
        return tasks

    def measure_baseline(self, model) -> None:
        """The pretrained reference every drift and retention metric compares against."""
        model.eval()
        self.baseline = self.latest = self._attention(model)
        self.weight_drift = WeightDrift(model)
        self.baseline_zs = {name: self._pretrained_zero_shot(model, name, "split", zs)
                            for name, zs in self.zero_shot.items()}
        if self.config.stop_every_steps:
            self.baseline_probe_zs = {name: self._pretrained_zero_shot(model, name, "probe", zs)
                                      for name, zs in self.probe_zero_shot.items()}

    def _pretrained_zero_shot(self, model, name: str, subset: str, zs: tuple[torch.Tensor, Split]) -> float:
        """Zero-shot accuracy of the pretrained `model` (called before any method wraps it), once per process
        for each checkpoint, task, image subset, prompt set and device."""
        cfg = self.config
        key = (cfg.model, name, subset, len(zs[1]), cfg.zeroshot_size, cfg.zeroshot_templates, str(self.device))
        if key not in _PRETRAINED_ZERO_SHOT:
            _PRETRAINED_ZERO_SHOT[key] = self._zero_shot_acc(model, *zs)
        return _PRETRAINED_ZERO_SHOT[key]

    # ---- measurements ---------------------------------------------------------------------
    @torch.no_grad()
    def _attention(self, model) -> Reading:
        """Every attention metric, the per-layer [CLS] states and the head-averaged CLS maps on the probe set."""
        clip = model.clip_model()
        with AttentionCapture(clip) as cap:
            out = clip.vision_model(pixel_values=self.probe_x, output_hidden_states=True)
        embedding = clip.visual_projection(out.pooler_output).float()
        probs = cap.probabilities()
        views = [View(M.cls_patch_distribution(a[:, :, 0, :]), a, probs, self.grid, self.patch, self.topk,
                      self.probe_boxes) for a in probs]
        values = {name: [float(metric.of(v).mean()) for v in (views if metric.per_layer else views[-1:])]
                  for name, metric in ATTENTION_METRICS.items()
                  if self.probe_boxes is not None or not metric.needs_boxes}
        maps = torch.stack([v.p.mean(1) for v in views], 1).cpu()
        return Reading(values, [h[:, 0].float() for h in out.hidden_states[1:]], maps, embedding)

    def _normalised_batches(self, split: Split):
        """(normalised pixels on the device, labels) of a split, in evaluation batches."""
        for pixels, labels, _ in split.batches(self.eval_batch):
            yield normalise(pixels.to(self.device), self.mean, self.std), labels

    @torch.no_grad()
    def _percent_correct(self, logits_of, split: Split) -> float:
        """Top-1 accuracy (%) of `logits_of(normalised pixels)` over a split, in evaluation batches."""
        return _percent(((logits_of(x), labels) for x, labels in self._normalised_batches(split)), len(split))

    def _zero_shot_acc(self, model, classifier: torch.Tensor, split: Split) -> float:
        return self._percent_correct(lambda x: F.normalize(model.embed(x).float(), dim=-1) @ classifier.T, split)

    def accuracy(self, model, split: Split) -> float:
        model.eval()
        return self._percent_correct(model, split)

    @torch.no_grad()
    def pretrained_val_accuracy(self, model) -> float:
        """val accuracy of `model` while its image tower is the pretrained one (see _PRETRAINED_VAL_EMBEDDINGS)."""
        cfg, val = self.config, self.task.val
        key = (cfg.model, cfg.dataset, len(val), str(self.device))
        model.eval()
        if key not in _PRETRAINED_VAL_EMBEDDINGS:
            _PRETRAINED_VAL_EMBEDDINGS[key] = [(model.embed(x), labels) for x, labels in self._normalised_batches(val)]
        return _percent(((model.head(e), labels) for e, labels in _PRETRAINED_VAL_EMBEDDINGS[key]), len(val))

    # ---- per epoch --------------------------------------------------------------------------
    def run(self, model, epoch: int, tower_moved: bool = True) -> dict[str, float]:
        """val/acc every epoch; attention, representation and zero-shot metrics every `eval_every` epochs.

        `tower_moved=False` (epoch 0; a linear probe's phase) says the image tower still has its
        pretrained weights, so the pretrained attention and zero-shot readings are reused, not re-measured,
        and val accuracy is the head's on the pretrained validation embeddings."""
        if self.baseline is None:
            raise RuntimeError("Evaluator.run: call measure_baseline(model) on the pretrained model first")
        model.eval()
        val = self.accuracy(model, self.task.val) if tower_moved else self.pretrained_val_accuracy(model)
        out = {keys.VAL_ACC: val}
        if epoch % self.config.eval_every and epoch != self.config.epochs:
            return out
        self.latest = self._attention(model) if tower_moved else self.baseline
        out.update(self._drift(model, self.latest, self.zero_shot, self.baseline_zs, tower_moved))
        return out

    def probe(self, model) -> dict[str, float]:
        """The stop rule's reading between epochs (`stop_every_steps`): attention, CKA and drift on the
        probe set, zero-shot on PROBE_ZEROSHOT images per task against the pretrained model's accuracy on
        the same images. Leaves `latest` (the figures' reading) alone."""
        model.eval()
        return self._drift(model, self._attention(model), self.probe_zero_shot, self.baseline_probe_zs)

    def _drift(self, model, reading: Reading, zero_shot: dict, baseline_zs: dict[str, float],
               tower_moved: bool = True) -> dict[str, float]:
        """Every measurement against the pretrained model, from an attention reading and zero-shot tasks."""
        out = self._attention_keys(reading)
        cka = [M.linear_cka(a, b) for a, b in zip(reading.cls, self.baseline.cls)]
        out.update({keys.cka(i): v for i, v in enumerate(cka)})
        out[keys.cka()] = float(np.mean(cka))
        out[keys.EMBEDDING_DRIFT] = M.embedding_drift(self.baseline.embedding, reading.embedding)
        out[keys.WEIGHT_DRIFT] = self.weight_drift(model)
        for name, (classifier, split) in zero_shot.items():
            base = baseline_zs[name]
            acc = self._zero_shot_acc(model, classifier, split) if tower_moved else base
            out[keys.zeroshot_acc(name)] = acc
            # acc / base first: an unchanged accuracy gives exactly 100.
            out[keys.retention(name)] = 100.0 * (acc / base) if base else math.nan
        return out

    def _attention_keys(self, reading: Reading) -> dict[str, float]:
        out = {}
        for name, per_layer in reading.values.items():
            if ATTENTION_METRICS[name].per_layer:
                out.update({keys.attn(name, i): v for i, v in enumerate(per_layer)})
                out.update({keys.attn_delta(name, i): _pct_change(v, b)
                            for i, (v, b) in enumerate(zip(per_layer, self.baseline.values[name]))})
            mean, base = float(np.mean(per_layer)), float(np.mean(self.baseline.values[name]))
            out[keys.attn(name)] = mean
            out[keys.attn_delta(name)] = _pct_change(mean, base)
        return out

    def test_accuracy(self, model) -> dict[str, float]:
        return {keys.TEST_ACC: self.accuracy(model, self.task.test)}

    def snapshot(self) -> AttentionSnapshot:
        """The probe set's attention, pretrained vs latest evaluation, for the trial's figures."""
        whole = frozenset(name for name, metric in ATTENTION_METRICS.items() if not metric.per_layer)
        return AttentionSnapshot(self.probe_pixels, self.grid, self.baseline.maps, self.latest.maps,
                                 self.baseline.values, self.latest.values, whole)

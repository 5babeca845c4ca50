"""One trial: build the model, data and method, train, evaluate every epoch, report.

    run_trial(config, report, checkpoint_dir=None)

`report(metrics, checkpoint_dir)` is called once before training (epoch 0) and after every
epoch with a flat dict of metrics (plus `status`) and, on the epochs that save one, a directory
holding a checkpoint of what the method trains; Ray Tune and the `driftlab trial` CLI plug in
the same way. Given a `checkpoint_dir`, the trial resumes after the epoch it was written at.
"""

from __future__ import annotations

import copy
import functools
import math
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from trainables import keys
from trainables.config import TrialConfig
from trainables.data import load_task
from trainables.errors import ConfigError
from trainables.evaluate import Evaluator
from trainables.methods import Phase, build_phases
from trainables.models import ImageClassifier, image_tower_parameters, load_clip, text_classifier
from trainables.selection import BestEpoch
from trainables.stop_rule import STATUS as STOPPED_DRIFT
from trainables.stop_rule import StopRule
from trainables.splits import augment, normalise

Report = Callable[[dict, "str | None"], None]
CHECKPOINT_FILE = "trial_state.pt"
PARTS_FILE, TOWER_FILE = "trained_parts.safetensors", "trained_tower.safetensors"


def pick_device(choice: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but torch sees no CUDA device; use auto or cpu")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int):
    """Linear warmup over `warmup_steps`, then cosine decay to 0 at `total_steps` (stepped per batch)."""
    warm = max(1, warmup_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total_steps))))


@functools.lru_cache(maxsize=2)
def _cached_clip(model: str):
    # Ray reuses actors across trials: load each checkpoint once per worker, deep-copy per trial.
    return load_clip(model)


def trainable_sizes(phases: list[Phase], full: int) -> dict[str, float]:
    """params/trainable: the parameters any phase trains; params/trainable_pct: that as a % of `full`, the
    count full fine-tuning trains (pretrained image tower, its projection and the head), so `ft` reads 100."""
    count = sum({id(p): p.numel() for phase in phases for p in phase.params}.values())
    return {keys.TRAINABLE: float(count), keys.TRAINABLE_PCT: 100.0 * count / full}


class Trial:
    """Everything a trial holds; `run` is the loop."""

    def __init__(self, config: TrialConfig):
        self.started = time.perf_counter()
        self.config = config
        self.device = pick_device(config.device)
        torch.manual_seed(config.seed)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        loaded = _cached_clip(config.model)
        clip = copy.deepcopy(loaded.model)
        self.tokenizer = loaded.tokenizer
        processor = loaded.image_processor
        self.mean = torch.tensor(processor.image_mean, device=self.device)
        self.std = torch.tensor(processor.image_std, device=self.device)
        self.task = load_task(config.dataset, processor, seed=config.seed, data_fraction=config.data_fraction)
        self.model = ImageClassifier(clip, len(self.task.classes))
        self._init_head(clip)
        self.model.to(self.device)
        self.evaluator = Evaluator(self.task, config, loaded, self.mean, self.std, self.device)
        # Drift and retention compare against the pretrained model: measured before a method wraps it.
        self.evaluator.measure_baseline(self.model)
        full = sum(p.numel() for p in [*image_tower_parameters(clip), *self.model.head.parameters()])
        self.phases: list[Phase] = build_phases(self.model, config, has_boxes=self.task.train.boxes is not None)
        self.model.to(self.device)  # again: LoRA / adapter modules are created on the CPU
        self._names = {id(p): n for n, p in self.model.named_parameters()}
        self.sizes = trainable_sizes(self.phases, full)
        self.best = BestEpoch()
        self.reporting_s = 0.0  # spent saving checkpoints and in `report`: not the trial's own compute
        self.stop = StopRule.from_config(config)
        self.steps_done, self.stopped_mid_epoch = 0, False  # optimiser steps so far; `run` sets them on resume
        self.wise_rows: list[dict[str, float]] = []  # the WiSE-FT sweep of the selected model, when asked

    def _init_head(self, clip) -> None:
        self.pretrained_head = None  # the head WiSE-FT interpolates from: the zero-shot one, when used
        if self.config.head_init != "zeroshot":
            return
        if self.tokenizer is None:
            raise ConfigError(f"head_init: 'zeroshot' needs a tokenizer, and {self.config.model!r} has none; "
                              "use head_init random")
        weight = text_classifier(clip, self.tokenizer, self.task.classes, self.task.templates, "cpu")
        with torch.no_grad():
            self.model.head.linear.weight.copy_(weight)
            self.model.head.linear.bias.zero_()
        self.pretrained_head = {"weight": weight.clone(), "bias": torch.zeros_like(self.model.head.linear.bias)}

    # ---- training -------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _start_phase(self, phase: Phase):
        for p in self.model.parameters():
            p.requires_grad_(False)
        for p in phase.params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(phase.params, lr=phase.lr, weight_decay=self.config.weight_decay)
        steps = phase.epochs * math.ceil(len(self.task.train) / self.config.batch_size)
        return optimizer, warmup_cosine(optimizer, int(self.config.warmup_frac * steps), steps)

    def step(self, phase: Phase, optimizer, scheduler, x: torch.Tensor, labels: torch.Tensor,
             boxes: torch.Tensor | None = None, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor] | None:
        """One optimiser step; returns detached logs, or None when the loss is not finite. `ids`: the
        images' ids in the split when inputs repeat across epochs (see LossFn)."""
        with self._autocast():
            loss, logs = phase.loss(self.model, x, labels, boxes=boxes, ids=ids)
        if not torch.isfinite(loss):
            return None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(phase.params, self.config.grad_clip)
        optimizer.step()
        scheduler.step()
        return {keys.TRAIN_LOSS: loss.detach(), **logs}

    def _train_epoch(self, phase: Phase, optimizer, scheduler, epoch: int) -> dict[str, float]:
        cfg = self.config
        self.model.train()
        epoch_seed = cfg.seed * 100_003 + epoch  # order and augmentation depend on (seed, epoch) only: resumable
        generator = torch.Generator().manual_seed(epoch_seed)
        totals: dict[str, torch.Tensor] = {}
        batches = 0
        boxes = self.task.train.boxes
        for pixels, labels, index in self.task.train.batches(cfg.batch_size, shuffle_seed=epoch_seed):
            if self.device.type == "cuda":
                # Splits are preprocessed once and held as uint8 in memory: a pinned batch copies to the GPU
                # asynchronously and normalisation + augmentation run there, so no DataLoader workers are needed.
                pixels = pixels.pin_memory()
            x = normalise(pixels.to(self.device, non_blocking=True), self.mean, self.std)
            if self.task.augment:
                x = augment(x, generator)
            # An augmented image differs every epoch: no stable id to cache its source logits under.
            logs = self.step(phase, optimizer, scheduler, x, labels.to(self.device),
                             None if boxes is None else boxes[index].to(self.device),
                             None if self.task.augment else index)
            if logs is None:
                return {keys.TRAIN_LOSS: float("nan")}
            for key, value in logs.items():
                totals[key] = totals.get(key, 0) + value.float()
            batches += 1
            self.steps_done += 1
            if self._probe_says_stop():
                break
        # One device sync per epoch, not per step.
        return {key: float(value) / max(batches, 1) for key, value in totals.items()}

    def _probe_says_stop(self) -> bool:
        """With `stop_every_steps: N`, the stop rule reads the evaluator's cheap probe every N steps."""
        every = self.config.stop_every_steps
        if self.stop is None or not every or self.steps_done % every:
            return False
        fired = self.stop.observe(self.evaluator.probe(self.model))
        self.model.train()
        self.stopped_mid_epoch = fired
        return fired

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.task.train) / self.config.batch_size)

    # ---- checkpoints ----------------------------------------------------------------------
    def trained(self, added_only: bool = False) -> dict[str, torch.Tensor]:
        """Every parameter a phase trains, by name (CPU copies); with added_only, only the small trained parts:
        each phase's `parts`, by default those the pretrained checkpoint does not hold (head, LoRA, adapters)."""
        if added_only:
            params = [p for phase in self.phases
                      for p in (phase.parts if phase.parts is not None else self.model.added_parameters(phase.params))]
        else:
            params = [p for phase in self.phases for p in phase.params]
        params = list({id(p): p for p in params}.values())
        return {self._names[id(p)]: p.detach().cpu().contiguous() for p in params}

    def _save(self, directory: Path, phase_index: int, epoch: int, optimizer, scheduler) -> None:
        torch.save({"epoch": epoch, "phase": phase_index, "trained": self.trained(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "best": self.best.state(), "stop_streak": self.stop.streak if self.stop else 0,
                    "config": self.config.to_dict()}, directory / CHECKPOINT_FILE)

    def _load(self, directory: Path) -> dict:
        state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        self._assign(state["trained"])
        self.best = BestEpoch.from_state(state.get("best"))
        if self.stop is not None:
            self.stop.streak = state.get("stop_streak", 0)
        return state

    def _assign(self, weights: dict[str, torch.Tensor]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)

    def _best_test_accuracy(self) -> dict[str, float]:
        """The test accuracy of the best epoch's weights: all else was measured when that epoch was
        offered (the evaluator is deterministic), and test accuracy is read once, at the end, so
        that no epoch is chosen by it. The model is left with the last epoch's weights."""
        last_weights = self.trained()
        self._assign(self.best.weights)
        try:
            return self.evaluator.test_accuracy(self.model)
        finally:
            self._assign(last_weights)

    def _timed(self, report: Report) -> Report:
        def timed(metrics: dict, directory: str | None) -> None:
            started = time.perf_counter()
            try:
                report(metrics, directory)
            finally:
                self.reporting_s += time.perf_counter() - started
        return timed

    def _report_with_checkpoint(self, report: Report, metrics: dict, index: int, epoch: int, optimizer,
                                scheduler) -> None:
        with tempfile.TemporaryDirectory(prefix="driftlab-ckpt-") as tmp:
            started = time.perf_counter()
            self._save(Path(tmp), index, epoch, optimizer, scheduler)
            self.reporting_s += time.perf_counter() - started
            report(metrics, tmp)

    # ---- the loop -------------------------------------------------------------------------
    def run(self, report: Report, checkpoint_dir: str | None = None, checkpoint_every_s: float = 0.0) -> dict:
        """Train and evaluate every epoch. An epoch's report carries a checkpoint when `checkpoint_every_s`
        have passed since the last one (0: every epoch); the trial's last epoch's always does."""
        cfg = self.config
        report = self._timed(report)
        saved_at = time.perf_counter()
        done_epochs, state = 0, None
        if checkpoint_dir:
            state = self._load(Path(checkpoint_dir))
            done_epochs = state["epoch"]
        else:
            metrics = {"epoch": 0, "status": "running", **self.sizes,
                       **self.evaluator.run(self.model, 0, tower_moved=False)}
            report(metrics, None)
        epoch_offset, last = 0, {}
        self.steps_done, self.stopped_mid_epoch = done_epochs * self.steps_per_epoch(), False
        for index, phase in enumerate(self.phases):
            phase_end = epoch_offset + phase.epochs
            if done_epochs >= phase_end:
                epoch_offset = phase_end
                continue
            optimizer, scheduler = self._start_phase(phase)
            if state is not None and state["phase"] == index:
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
            for epoch in range(max(done_epochs, epoch_offset) + 1, phase_end + 1):
                started = time.perf_counter()
                train = self._train_epoch(phase, optimizer, scheduler, epoch)
                train_s = time.perf_counter() - started
                if not math.isfinite(train[keys.TRAIN_LOSS]):
                    last = {"epoch": epoch, "status": "diverged", "phase": phase.name, **train}
                    report(last, None)
                    return last
                moved = any(p.tunes_tower for p in self.phases[:index + 1])
                last = {"epoch": epoch, "status": "running", "phase": phase.name, **train, **self.sizes,
                        keys.TRAIN_S: train_s, **self.evaluator.run(self.model, epoch, tower_moved=moved)}
                is_best = self.best.offer(epoch, last, self.trained)
                # With stop_every_steps the probe decided during the epoch; else the epoch's evaluation decides.
                stopped = self.stopped_mid_epoch or (self.stop is not None and not cfg.stop_every_steps
                                                     and self.stop.observe(last))
                if epoch == cfg.epochs or stopped:
                    self._finish(last, is_best)
                    if stopped:
                        last.update({"status": STOPPED_DRIFT, keys.STOP_EPOCH: epoch,
                                     keys.STOP_COMPUTE: self.steps_done / (cfg.epochs * self.steps_per_epoch())})
                if epoch == cfg.epochs or stopped or time.perf_counter() - saved_at >= checkpoint_every_s:
                    self._report_with_checkpoint(report, last, index, epoch, optimizer, scheduler)
                    saved_at = time.perf_counter()
                else:
                    report(last, None)
                if stopped:
                    return last
            epoch_offset = phase_end
        return last

    def _finish(self, last: dict, is_best: bool) -> None:
        """The last epoch's additions: test accuracy, the best epoch's values, the WiSE-FT sweep if asked."""
        test = self.evaluator.test_accuracy(self.model)
        last.update(test)
        if self.best.epoch:  # none when val/acc was never finite
            # Everything else of the best epoch was measured when it was offered; it lacks only test accuracy.
            self.best.metrics.update(test if is_best else self._best_test_accuracy())
            last.update(self.best.report())
            if self.config.wise_alphas:
                self.wise_rows = self.wise(self.config.wise_alphas)
        last["status"] = "completed"
        # build + train + evaluate: reporting and checkpoints are the caller's overhead
        last[keys.TRIAL_S] = time.perf_counter() - self.started - self.reporting_s

    def wise(self, alphas) -> list[dict[str, float]]:
        """The WiSE-FT sweep of the best-validation epoch's weights (trainables/wise.py); the model is
        left as it was."""
        from trainables.wise import wise_sweep

        last_weights, latest = self.trained(), self.evaluator.latest
        self._assign(self.best.weights)
        try:
            return wise_sweep(self.model, self.evaluator, self.pretrained_head, alphas)
        finally:
            self._assign(last_weights)
            self.evaluator.latest = latest

    # ---- artifacts ------------------------------------------------------------------------
    def write_artifacts(self, out_dir: str | Path) -> list[Path]:
        """Figures, the per-layer metric table and the small trained parts (head, LoRA/adapter weights) of
        the best-validation epoch, the model a study selects; the tower weights it trained (ft, lpft) in a
        file of their own, so a finished run can be reloaded; the WiSE-FT table and figure when swept."""
        from safetensors.torch import save_file

        from trainables.figures import write_figures

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        parts = out / PARTS_FILE
        added = self.trained(added_only=True)
        save_file({name: self.best.weights.get(name, value) for name, value in added.items()}, str(parts))
        written = [*write_figures(self.evaluator.snapshot(), out), parts]
        tower = {name: value for name, value in self.best.weights.items() if name not in added}
        if tower:  # what `driftlab wise` interpolates from on a finished run
            save_file(tower, str(out / TOWER_FILE))
            written.append(out / TOWER_FILE)
        if self.wise_rows:
            from trainables.wise_figure import write_wise

            written += write_wise(self.wise_rows, out)
        return written


def run_trial(config: dict | TrialConfig, report: Report, checkpoint_dir: str | None = None) -> dict:
    """Run one trial; returns the last metrics reported."""
    cfg = config if isinstance(config, TrialConfig) else TrialConfig.from_dict(config)
    return Trial(cfg).run(report, checkpoint_dir)

"""Per-step and per-eval costs of driftlab's trial against the bare PyTorch work, same model and batch.

- step_ratio: `Trial.step` (the trainable's step: loss, backward, clipping, AdamW, schedule)
  over a bare `cross_entropy -> backward -> AdamW.step` loop on a copy of the same model.
- eval_ratio: the evaluator's attention pass (q/k hooks, every attention metric, CKA states)
  over a plain SDPA forward of the image tower on the same probe batch.
- gta_ratio: an FT+GTA step over an FT step, the source tower's logits recomputed (augmented inputs).
- gta_cached_ratio: the same where inputs repeat (no augmentation), after the first epoch: the
  source tower's logits are read from the per-image cache the first sight of the batch filled.
- images/s of FT, LoRA and FT+GTA steps (cached and not).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from benchmarks.common import interleaved, ratio_stats
from trainables.config import TrialConfig
from trainables.splits import normalise
from trainables.trial import Trial


def build(model_dir: str, batch: int, **overrides) -> tuple:
    """(trial, phase, optimizer, scheduler, x, labels, ids) for one fixed batch of the training split."""
    config = TrialConfig.from_dict(dict(model=model_dir, dataset="embedded/shape", zero_shot=[], batch_size=batch,
                                        probe_size=batch, lr=1e-5, **overrides))
    trial = Trial(config)
    phase = trial.phases[-1]
    optimizer, scheduler = trial._start_phase(phase)
    pixels, labels, ids = next(trial.task.train.batches(batch))
    x = normalise(pixels.to(trial.device), trial.mean, trial.std)
    return trial, phase, optimizer, scheduler, x, labels.to(trial.device), ids


def step_ratio(model_dir: str, batch: int, reps: int) -> dict:
    trial, phase, optimizer, scheduler, x, y, _ = build(model_dir, batch)
    bare_model = copy.deepcopy(trial.model)
    bare_params = [p for p in bare_model.parameters() if p.requires_grad]
    bare_opt = torch.optim.AdamW(bare_params, lr=1e-5, weight_decay=trial.config.weight_decay)

    def bare():
        loss = F.cross_entropy(bare_model(x), y)
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        bare_opt.step()

    times = interleaved({"driftlab": lambda: trial.step(phase, optimizer, scheduler, x, y), "bare": bare}, reps)
    return {"step_ratio": ratio_stats(times["driftlab"], times["bare"]),
            "step_seconds": {k: min(v) for k, v in times.items()}}


def eval_ratio(model_dir: str, batch: int, reps: int) -> dict:
    trial = build(model_dir, batch)[0]
    evaluator, clip = trial.evaluator, trial.model.clip_model()
    trial.model.eval()

    def plain():
        with torch.no_grad():
            clip.vision_model(pixel_values=evaluator.probe_x)

    times = interleaved({"eval": lambda: evaluator._attention(trial.model), "sdpa": plain}, reps)
    return {"eval_ratio": ratio_stats(times["eval"], times["sdpa"]),
            "eval_seconds": {k: min(v) for k, v in times.items()}}


def gta_ratio_and_throughput(model_dir: str, batch: int, reps: int) -> dict:
    steps = {}
    for name, overrides in (("ft", {}), ("lora", {"method": "lora"}), ("gta", {"gta_lambda": 0.5}),
                            ("gta_cached", {"gta_lambda": 0.5})):
        trial, phase, optimizer, scheduler, x, y, ids = build(model_dir, batch, **overrides)
        # Only the cached arm passes the batch's ids: the step a repeating input makes from epoch 2 on
        # (the warm-up step below is its first sight of the batch, which fills the cache).
        ids = ids if name == "gta_cached" else None
        steps[name] = (lambda t=trial, p=phase, o=optimizer, s=scheduler, a=x, b=y, i=ids:
                       t.step(p, o, s, a, b, ids=i))
    import time

    wall = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for fn in steps.values():
        fn()  # warm-up
    for rep in range(reps):
        for name in (list(steps) if rep % 2 == 0 else list(steps)[::-1]):
            w, c = time.perf_counter(), time.process_time()
            steps[name]()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {"gta_ratio": ratio_stats(cpu["gta"], cpu["ft"]),
            "gta_cached_ratio": ratio_stats(cpu["gta_cached"], cpu["ft"]),
            **{f"{name}_images_per_s": batch / min(wall[name]) for name in steps}}

"""Training throughput and model FLOPs utilisation (MFU) of FT, LoRA and FT + GTA steps on this device.

For each arm and batch size: images/s of `Trial.step` (the product's own step, bf16 autocast on CUDA),
timed over steps after a warm-up, with the device synchronised around the timed run; the FLOPs
of one step counted by torch's `FlopCounterMode` (matmuls, convolutions and attention, forward and
backward; the optimiser's elementwise work is not counted), per image; and MFU = images/s x FLOPs
per image / the device's dense bf16 peak. On a CPU there is no such peak, so MFU is left out and
GFLOP/s stands in. A GPU runs batches 128 and 256 (the ViT-B/32 comparison); a CPU runs batch 8,
since a B/32 step at 256 takes about a minute on 2 cores.

    python -m benchmarks --only throughput [--peak-tflops 989]
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.compute import build

ARMS = {"ft": {}, "lora": {"method": "lora"}, "gta": {"gta_lambda": 0.5}}
# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, matched in this order on
# torch's device name ("NVIDIA H100 80GB HBM3" is the SXM part, "NVIDIA H100 PCIe" the PCIe one).
BF16_PEAKS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12), ("L40S", 362e12),
              ("A10", 125e12))


def bf16_peak(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named like this, or None when it is not in the table."""
    return next((peak for key, peak in BF16_PEAKS if key in device_name), None)


def mfu(images_per_s: float, flops_per_image: float, peak: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the peak."""
    return images_per_s * flops_per_image / peak


def step_flops(step) -> float:
    """FLOPs of one call of `step`, counted by torch."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def _images_per_s(step, batch: int, steps: int, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        step()  # warm-up: allocator, kernels, the first sight of a batch
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return batch * steps / (time.perf_counter() - started)


def throughput(model_dir: str, smoke: bool, peak_tflops: float | None = None) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batches = (4, 8) if smoke else ((128, 256) if device.type == "cuda" else (8,))
    steps = 2 if smoke else (20 if device.type == "cuda" else 3)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops * 1e12 if peak_tflops else (bf16_peak(name) if device.type == "cuda" else None)
    out: dict = {"throughput_device": name, "throughput_peak_tflops": peak / 1e12 if peak else None}
    for arm, overrides in ARMS.items():
        for batch in batches:
            trial, phase, optimizer, scheduler, x, y, _ = build(model_dir, batch, **overrides)
            step = lambda: trial.step(phase, optimizer, scheduler, x, y)  # noqa: E731
            per_image = step_flops(step) / batch
            rate = _images_per_s(step, batch, steps, trial.device)
            out[f"{arm}_gflop_per_image"] = per_image / 1e9
            out[f"{arm}_b{batch}_images_per_s"] = rate
            out[f"{arm}_b{batch}_gflop_per_s"] = rate * per_image / 1e9
            if peak:
                out[f"{arm}_b{batch}_mfu"] = mfu(rate, per_image, peak)
            del trial, optimizer
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return out

"""Peak memory of a LoRA step against an FT step, each in a fresh process (peak RSS while training, CPU).

    python -m benchmarks.memory ft b32 32     (prints the peak RSS in MiB of two training steps)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def peak_mib(method: str, model_dir: str, batch: int) -> float:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", method, model_dir, str(batch)],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def lora_mem_ratio(model_dir: str, batch: int) -> dict:
    ft, lora = peak_mib("ft", model_dir, batch), peak_mib("lora", model_dir, batch)
    return {"lora_mem_ratio": lora / ft, "peak_mib": {"ft": ft, "lora": lora}}


def _probe(method: str, model_dir: str, batch: int) -> float:
    import torch

    from benchmarks.compute import build

    import gc

    from trainables import trial as trial_module

    torch.set_num_threads(2)
    trial, phase, optimizer, scheduler, x, y, _ = build(model_dir, batch, method=method, data_fraction=0.1)
    # The pristine copy a Ray worker caches for its next trial lives in host memory, never on the
    # accelerator: drop it, and measure only the peak from here on (what a GPU's allocator would see).
    trial_module._cached_clip.cache_clear()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set
    for _ in range(2):  # the second step holds AdamW's state as well
        trial.step(phase, optimizer, scheduler, x, y)
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


if __name__ == "__main__":
    print(_probe(sys.argv[1], sys.argv[2], int(sys.argv[3])))

"""Peak memory of a LoRA step against an FT step, each in a fresh process (peak RSS, CPU).

    python -m benchmarks.memory ft b32 32     (prints the peak RSS in MiB of two training steps)
"""

from __future__ import annotations

import resource
import subprocess
import sys


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

    torch.set_num_threads(2)
    trial, phase, optimizer, scheduler, x, y = build(model_dir, batch, method=method)
    for _ in range(2):  # the second step holds AdamW's state as well
        trial.step(phase, optimizer, scheduler, x, y)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    print(_probe(sys.argv[1], sys.argv[2], int(sys.argv[3])))

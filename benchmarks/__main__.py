"""Run every benchmark and print the ratios (min/median/max over interleaved repetitions).

    python -m benchmarks            full: ViT-B/32-sized random model, 8 x >=10 s trials, the real demo
    python -m benchmarks --smoke    tiny versions of all of it (what CI runs)
    python -m benchmarks --json     the figures as one JSON object on stdout
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

TARGETS = {"step_ratio": 1.05, "eval_ratio": 1.15, "gta_ratio": 1.35, "gta_cached_ratio": 1.10, "tune_ratio": 1.15,
           "tune_overhead_s_per_trial": 0.3, "lora_mem_ratio": 0.8, "demo_seconds": 180.0}
ALL = ("step", "eval", "gta", "memory", "throughput", "tune", "demo", "wise", "stop_probe", "eval_batch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks the benchmarks still run")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak for MFU, where the built-in table does not know it")
    args = parser.parse_args(argv)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in ALL]
    if unknown:
        print(f"benchmarks: --only: {unknown[0]!r} is not one of {', '.join(ALL)}", file=sys.stderr)
        return 2

    from benchmarks import compute, eval_batch, memory, stop_probe, sweep, throughput, wise
    from benchmarks.common import fixed_threads, save_random_clip

    fixed_threads(2)
    size = "smoke" if args.smoke else "b32"
    reps = 3 if args.smoke else 7
    batch, mem_batch = (8, 8) if args.smoke else (8, 32)
    model_dir = save_random_clip(size)
    figures: dict = {"mode": "smoke" if args.smoke else "full", "model": size}
    jobs = {
        "step": lambda: compute.step_ratio(model_dir, batch, reps),
        "eval": lambda: compute.eval_ratio(model_dir, 32 if not args.smoke else 8, reps * 2),
        "gta": lambda: compute.gta_ratio_and_throughput(model_dir, batch, reps),
        "memory": lambda: memory.lora_mem_ratio(model_dir, mem_batch),
        "throughput": lambda: throughput.throughput(model_dir, args.smoke, args.peak_tflops),
        "tune": lambda: sweep.tune_ratio(args.smoke),
        "demo": lambda: sweep.demo_seconds(args.smoke),
        "wise": lambda: wise.wise_cost(args.smoke),
        "stop_probe": lambda: stop_probe.probe_cost(args.smoke),
        "eval_batch": lambda: eval_batch.eval_batch_cost(args.smoke),
    }
    for name in chosen:
        started = time.time()
        print(f"benchmark {name} ...", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr):  # Tune prints tables; stdout is for the figures
            figures.update(jobs[name]())
        print(f"benchmark {name}: {time.time() - started:.0f}s", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        print_table(figures)
    return 0


def print_table(figures: dict) -> None:
    for key, target in TARGETS.items():
        if key not in figures:
            continue
        value = figures[key]
        if isinstance(value, dict):
            shown = f"median {value['median']:.3f} (min {value['min']:.3f}, max {value['max']:.3f})"
            value = value["median"]
        else:
            shown = f"{value:.3f}"
        ok = value < target if key == "lora_mem_ratio" else value <= target
        print(f"{key:<16} {shown:<44} target {'<' if key == 'lora_mem_ratio' else '<='} {target:g}  "
              f"{'ok' if ok else 'MISSED'}")
    for key in sorted(k for k in figures if k not in TARGETS):
        print(f"{key:<16} {figures[key]}")


if __name__ == "__main__":
    sys.exit(main())

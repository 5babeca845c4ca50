"""`driftlab trial`: one trial in-process, exactly as it runs under Ray Tune, without Ray.

    driftlab trial --method lora --lr 1e-3 --seed 1 --json

Every trial config key is a flag (`gta_lambda` -> `--gta-lambda`; list values comma-separated;
`--zero-shot none` turns zero-shot off). Per-epoch progress goes to stderr; without --json a
final table goes to stdout, with --json the final metrics as one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from orchestrator.cli import parse_args
from trainables import keys
from trainables.config import ConfigError, TrialConfig, calibrated_note
from trainables.dataset_check import check_local_dataset

COLUMNS = ("epoch", "phase", keys.TRAIN_LOSS, keys.VAL_ACC, keys.attn_delta("entropy"), keys.cka())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftlab trial", description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(TrialConfig):
        default = f.default if f.default is not dataclasses.MISSING else ",".join(map(str, f.default_factory()))
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar=f.name.upper(), default=None,
                            help=f"(default: {default or 'none'})")
    parser.add_argument("--json", action="store_true", help="print the final metrics as one JSON object on stdout")
    parser.add_argument("--out", type=Path, default=None,
                        help="write figures, per-layer table and trained parts here (default: none)")
    return parser


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def check_out_dir(out: Path | None) -> None:
    """--out must be (or become) a writable directory: checked before training, not after."""
    if out is None:
        return
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"out: {str(existing)!r} is a file; --out needs a directory (created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"out: {str(existing)!r} is not writable")


def main(argv: list[str] | None = None) -> int:
    from trainables.trial import Trial

    parser = build_parser()
    args, code = parse_args(parser, argv)
    if args is None:
        return code
    values = {k: v for k, v in vars(args).items() if k not in ("json", "out") and v is not None}
    log = sys.stderr if args.json else sys.stdout
    try:
        config = TrialConfig.from_dict(values)
        check_out_dir(args.out)
        for key, name in [("dataset", config.dataset), *(("zero_shot", task) for task in config.zero_shot)]:
            check_local_dataset(key, name)
        share = "" if config.data_fraction == 1 else f" on {config.data_fraction:.0%} of its training split"
        print(f"driftlab trial: {config.method} on {config.dataset}{share} (model {config.model}, lr {config.lr:g}, "
              f"seed {config.seed}, {config.epochs} epochs at batch {config.batch_size}) - loading ...",
              file=sys.stderr)
        note = calibrated_note([values])
        if note:
            print(f"driftlab trial: {note}", file=sys.stderr)
        started = time.perf_counter()
        trial = Trial(config)
    except ConfigError as err:
        print(f"driftlab: {err}", file=sys.stderr)
        return 2
    columns = COLUMNS + tuple(keys.retention(task) for task in trial.evaluator.zero_shot)
    print("  ".join(f"{c:>14}" for c in columns), file=log)

    def report(metrics: dict, _checkpoint_dir) -> None:
        print("  ".join(f"{_fmt(metrics.get(c, '')):>14}" for c in columns), file=log, flush=True)

    final = trial.run(report)
    final.setdefault(keys.TRIAL_S, time.perf_counter() - started)
    if trial.wise_rows:
        from orchestrator.wise_cli import print_rows

        print_rows(trial.wise_rows, log)
        final["wise"] = trial.wise_rows  # with --json: one object per α
    if args.out:
        trial.write_artifacts(args.out)
        print(f"artifacts written to {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps(final, sort_keys=True))
    else:
        print(f"status {final.get('status')}  test/acc {_fmt(final.get(keys.TEST_ACC, math.nan))}  "
              f"{final[keys.TRIAL_S]:.1f}s", file=log)
    return 0 if final.get("status") in ("completed", "diverged", "stopped_drift") else 1


if __name__ == "__main__":
    sys.exit(main())

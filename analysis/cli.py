"""`driftlab analyze`: read a sweep (CSV or MLflow), run the tests, write the report.

    run(build_parser().parse_args(argv), defaults)   # defaults: a spec's parsed `analysis:` section

    driftlab analyze --csv runs.csv --columns cifar100_retention=zeroshot/cifar100/retention,arch=model \
        --confirm "[{paired: [ft, lora], metric: retention}]" --out out/

Exit codes: 0 done; 2 bad input, with one line on stderr naming the flag and what it
accepts; 1 anything else that went wrong. Progress goes to stderr, nothing to stdout
except --help. orchestrator/analyze_cli.py adds the local tracking store and the sweep's spec.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path
from typing import Callable

from analysis.columns import parse_column_map
from analysis.confirm import parse_confirm
from analysis.options import (FAMILIES, AnalysisInputError, AnalysisOptions, options_from_spec, parse_alpha,
                              parse_epochs, parse_families, parse_margins, parse_metrics, parse_name, parse_pareto,
                              parse_threshold)

PROG = "driftlab analyze"
DEFAULT_OUT = "driftlab_out/analysis"


# Confirmatory contrasts, the signal families and foreign tables: (flag, metavar, help).
RESEARCH_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--confirm", "YAML", "confirmatory contrasts, a YAML list or a file holding one, e.g. "
                          "'[{paired: [ft, lora], metric: retention}]'; every other test is exploratory"),
    ("--target", "M", "what the signal families explain (default: retention, the first zero-shot task's)"),
    ("--signals", "A,B", "drift signals (keys, |key|, log10(lr); default: every one the table has)"),
    ("--reference", "S", "predictors: the signal the others are compared with (default repr/cka/mean)"),
    ("--methods", "A,B", "arms or methods the signal families pool (default: all)"),
    ("--early-epochs", "K,L", "early warning: the epochs to read (default: every one with values)"),
    ("--damage-threshold", "R", "early warning: a run is damaged when its final target is below R (default 50)"),
    ("--margins", "M,N", "selection: points below the best validation accuracy (default 1,2,3,5)"),
    ("--columns", "MAP", "with --csv: FOREIGN=DRIFTLAB,... (or a YAML file of such pairs) renaming another "
                         "tool's columns to driftlab's"),
    ("--epoch-template", "T", "with --csv: the per-epoch column prefix, {k} = the epoch (default epoch{k}_)"),
)


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus a message over several lines; we want one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AnalysisInputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Permutation tests and a report for a finished sweep.")
    p.add_argument("--csv", metavar="FILE", help="one row per trial (parameters, metrics, optional status)")
    p.add_argument("--experiment", metavar="NAME", help="MLflow experiment holding the sweep")
    p.add_argument("--parent-run", metavar="ID", help="sweep run id (default: latest run tagged driftlab.kind=sweep)")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--metrics", metavar="A,B", help="metric columns to test (default: every numeric metric)")
    p.add_argument("--families", metavar="F,G", help=f"test families, any of {','.join(FAMILIES)} (default all)")
    p.add_argument("--alpha", metavar="A", help="significance level after Holm correction (default 0.05)")
    p.add_argument("--pareto", metavar="M:max,N:min", help="also compute the Pareto front of these objectives")
    for flag, metavar, text in RESEARCH_FLAGS:
        p.add_argument(flag, metavar=metavar, help=text)
    p.add_argument("--spec", metavar="FILE", help="sweep spec (YAML/JSON) whose `analysis:` section sets defaults")
    p.add_argument("--log-mlflow", action="store_true",
                   help="log the output as a run 'analysis' nested under the sweep (needs --experiment)")
    return p


def _spec_options(path: str | None) -> AnalysisOptions:
    if path is None:
        return AnalysisOptions()
    if not Path(path).is_file():
        raise AnalysisInputError(f"--spec: no such file: {path}")
    import yaml  # YAML is a superset of JSON, so one loader reads both

    try:
        spec = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise AnalysisInputError(f"--spec: {path} is not valid YAML/JSON ({str(exc).splitlines()[0]})") from exc
    if not isinstance(spec, dict):
        raise AnalysisInputError(f"--spec: {path} must hold a mapping with an optional `analysis:` section")
    return options_from_spec(spec.get("analysis"))


def _options(args: argparse.Namespace, defaults: AnalysisOptions | None) -> AnalysisOptions:
    """--spec's section (else `defaults`, else the built-in defaults), overridden by any flag given."""
    opts = _spec_options(args.spec) if args.spec else copy.deepcopy(defaults) or AnalysisOptions()
    if args.families is not None:
        opts.families = parse_families(args.families, "--families")
    if args.metrics is not None:
        opts.metrics = parse_metrics(args.metrics)
        if not opts.metrics:
            raise AnalysisInputError("--metrics: give a comma-separated list of metric names")
    if args.alpha is not None:
        opts.alpha = parse_alpha(args.alpha, "--alpha")
    if args.pareto is not None:
        opts.pareto = parse_pareto(args.pareto, "--pareto")
    _research_options(args, opts)
    return opts


def _research_options(args: argparse.Namespace, opts: AnalysisOptions) -> None:
    """The flags of confirmatory contrasts, the signal families and foreign tables."""
    if args.confirm is not None:
        opts.confirm = parse_confirm(args.confirm, "--confirm")
    for flag in ("target", "reference"):
        if getattr(args, flag) is not None:
            setattr(opts, flag, parse_name(getattr(args, flag), f"--{flag}"))
    for flag in ("signals", "methods"):
        if getattr(args, flag) is not None:
            setattr(opts, flag, parse_metrics(getattr(args, flag)))
    if args.early_epochs is not None:
        opts.early_epochs = parse_epochs(args.early_epochs, "--early-epochs")
    if args.damage_threshold is not None:
        opts.damage_threshold = parse_threshold(args.damage_threshold, "--damage-threshold")
    if args.margins is not None:
        opts.margins = parse_margins(args.margins, "--margins")
    if args.columns is not None:
        opts.columns = parse_column_map(args.columns, "--columns")
    if args.epoch_template is not None:
        if args.epoch_template.count("{k}") != 1 or args.epoch_template.endswith("{k}"):
            raise AnalysisInputError(f"--epoch-template: must hold {{k}} (the epoch) once, before the key, e.g. "
                                     f"ep{{k}}_; got {args.epoch_template!r}")
        opts.epoch_template = args.epoch_template


def _check_source(args: argparse.Namespace) -> None:
    if args.csv and args.experiment:
        raise AnalysisInputError("input: pass either --csv FILE or --experiment NAME, not both")
    if not args.csv and not args.experiment:
        raise AnalysisInputError("input: pass --csv FILE or --experiment NAME (with --tracking-uri URI)")
    if args.csv and (args.parent_run or args.log_mlflow):
        flag = "--parent-run" if args.parent_run else "--log-mlflow"
        raise AnalysisInputError(f"{flag}: only meaningful with --experiment, not with --csv")
    if args.experiment and (args.columns or args.epoch_template):
        flag = "--columns" if args.columns else "--epoch-template"
        raise AnalysisInputError(f"{flag}: only meaningful with --csv (MLflow runs use driftlab's names)")
    if args.experiment:
        args.tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not args.tracking_uri:
            raise AnalysisInputError("--tracking-uri: required with --experiment (or set MLFLOW_TRACKING_URI)")


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _run(args: argparse.Namespace, opts: AnalysisOptions) -> None:
    from analysis.core import analyze_prepared
    from analysis.inputs import prepare

    if args.csv:
        from analysis.table import table_from_csv

        table = table_from_csv(args.csv, None, opts.columns, opts.epoch_template)
        source = args.csv
    else:
        from analysis.mlflow_io import table_from_mlflow

        table = table_from_mlflow(args.tracking_uri, args.experiment, args.parent_run,
                                  history="early_warning" in opts.families)
        source = f"experiment {args.experiment!r} at {args.tracking_uri}"
    prepared = prepare(table, opts)
    # Progress starts only once every option has been checked, so bad input still gives a single line.
    _say(f"read {len(table)} trial(s) from {source}")
    result = analyze_prepared(prepared, args.out, progress=_say)
    if args.log_mlflow:
        from analysis.mlflow_io import log_to_mlflow

        run_id = log_to_mlflow(result, args.tracking_uri, args.experiment, args.parent_run)
        _say(f"logged to MLflow run {run_id}")
    _say(f"report: {result.paths[0]}")


def run(args: argparse.Namespace, defaults: AnalysisOptions | None = None) -> None:
    """The analysis for parsed arguments; `defaults` (a sweep spec's parsed `analysis:` section) give way
    to --spec and to every flag. Raises AnalysisInputError on bad input."""
    _check_source(args)
    _run(args, _options(args, defaults))


def exit_code(work: Callable[[], object]) -> int:
    """Run `work` under the CLI's promise: 0 done; 2 and one line for bad input; 1 and one line otherwise."""
    try:
        work()
    except AnalysisInputError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - the CLI's promise is one line and exit 1
        print(f"{PROG}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return exit_code(lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

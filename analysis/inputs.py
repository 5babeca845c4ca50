"""Every option checked against the table before any test runs: one line naming the field, or a `Prepared`.

Names are read as the user wrote them: a foreign column name from `--columns`, a short form
(`retention`), `|key|` or `log10(lr)` for a signal; each is resolved to the table's column
here, so the families only ever see driftlab keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from analysis.confirm import PAIR_FAMILIES, Contrast
from analysis.errors import AnalysisInputError
from analysis.families import Inputs
from analysis.options import DEFAULT_TARGET, AnalysisOptions
from analysis.signals import LR, Signal, default_signals, parse_signal_name, signal_for
from analysis.strata import arm_labels
from analysis.table import (check_metrics, history_epochs, metric_columns, resolve_metric, split_completed,
                            varying_parameters)
from trainables.keys import cka, is_per_layer

SIGNAL_FAMILIES = ("predictors", "early_warning", "selection", "polarity")


@dataclass
class Prepared:
    table: pd.DataFrame  # every trial, tidy
    completed: pd.DataFrame
    excluded: dict[str, int]
    options: AnalysisOptions
    shown: list[str]  # metrics in cells.csv and the figures
    inputs: Inputs
    contrasts: list[Contrast] = field(default_factory=list)  # resolved to the table's names


def _name(name: str, options: AnalysisOptions, table: pd.DataFrame, flag: str) -> str:
    """A foreign name through --columns, then a short form to the table's key."""
    return resolve_metric((options.columns or {}).get(name, name), table, flag)


def tested_metrics(completed: pd.DataFrame, metrics: list[str], explicit: bool) -> list[str]:
    """Metrics that enter the test families: not constant, and not per-layer unless asked for."""
    varying = [m for m in metrics if completed[m].nunique(dropna=True) > 1]
    return varying if explicit else [m for m in varying if not is_per_layer(m)]


def _target(completed: pd.DataFrame, options: AnalysisOptions) -> str | None:
    default = options.target == DEFAULT_TARGET
    try:
        target = _name(options.target, options, completed, "--target")
    except AnalysisInputError:
        if default:
            return None  # no zero-shot task: the signal families say so in the report
        raise
    if target not in completed.columns:
        if default:
            return None
        raise AnalysisInputError(f"--target: no metric column {options.target!r}; available: "
                                 f"{', '.join(metric_columns(completed))}")
    values = pd.to_numeric(completed[target], errors="coerce").dropna()
    if values.nunique() < 2 and any(f in options.families for f in SIGNAL_FAMILIES):
        seen = f"every completed trial has {values.iloc[0]:g}" if len(values) else "no completed trial has it"
        raise AnalysisInputError(f"--target: {target} has no variance ({seen}); pick a varying metric: "
                                 f"{', '.join(m for m in metric_columns(completed) if completed[m].nunique() > 1)}")
    return target


def _signal(name: str, completed: pd.DataFrame, options: AnalysisOptions, flag: str) -> Signal:
    column, absolute = parse_signal_name(name)
    column = column if column == LR else _name(column, options, completed, flag)
    if column not in completed.columns:
        raise AnalysisInputError(f"{flag}: no column {name!r} for a signal; available: "
                                 f"{', '.join(metric_columns(completed) + ['log10(lr)'])}")
    return signal_for(column, absolute)


def _methods(completed: pd.DataFrame, methods: list[str] | None) -> list[str] | None:
    if not methods:
        return None
    present = sorted(set(arm_labels(completed)) | set(completed["method"].astype(str)))
    for m in methods:
        if m not in present:
            raise AnalysisInputError(f"--methods: no arm or method {m!r}; present: {', '.join(present)}")
    return methods


def _epochs(completed: pd.DataFrame, wanted: list[int] | None) -> list[int]:
    available = history_epochs(completed)
    if wanted is None:
        return available
    if not available:
        raise AnalysisInputError("--early-epochs: the table has no per-epoch values (MLflow metric history, "
                                 "`epoch<k>_` columns or a long table with an `epoch` column)")
    beyond = [k for k in wanted if k > max(available)]
    if beyond:
        raise AnalysisInputError(f"--early-epochs: epoch {beyond[0]} is beyond the table's epochs "
                                 f"({min(available)}-{max(available)})")
    return [k for k in wanted if k in available]


def _contrast(c: Contrast, i: int, completed: pd.DataFrame, options: AnalysisOptions) -> Contrast:
    where = f"confirm[{i}]"
    metric = _name(c.metric, options, completed, f"{where}.metric")
    if metric not in metric_columns(completed):
        raise AnalysisInputError(f"{where}.metric: no metric column {c.metric!r}; available: "
                                 f"{', '.join(metric_columns(completed))}")
    if c.family in PAIR_FAMILIES:
        arms = sorted(set(arm_labels(completed)))
        for arm in c.subject:
            if arm not in arms:
                raise AnalysisInputError(f"{where}.{c.family}: no arm {arm!r}; arms: {', '.join(arms)}")
        return dataclasses.replace(c, metric=metric)
    if c.family == "dose":
        doses = [p for p in varying_parameters(completed) if p == LR or p.endswith("_lambda")]
        if c.subject[0] not in doses:
            raise AnalysisInputError(f"{where}.dose: {c.subject[0]!r} is not a varying dose; doses: "
                                     f"{', '.join(doses) or '(none)'}")
        return dataclasses.replace(c, metric=metric)
    return dataclasses.replace(c, metric=metric, subject=(_signal(c.subject[0], completed, options, where).name,))


def prepare(table: pd.DataFrame, options: AnalysisOptions) -> Prepared:
    """Check every option against the table (AnalysisInputError on the first bad one)."""
    completed, excluded = split_completed(table)
    requested = check_metrics(completed, [(options.columns or {}).get(m, m) for m in options.metrics or []] or None)
    shown = requested or [m for m in metric_columns(completed) if completed[m].notna().any()]
    contrasts = [_contrast(c, i, completed, options) for i, c in enumerate(options.confirm)]
    tested = tested_metrics(completed, shown, explicit=requested is not None)
    tested += [c.metric for c in contrasts if c.metric not in tested]  # a declared contrast is always tested
    target = _target(completed, options)
    signals = ([_signal(s, completed, options, "--signals") for s in options.signals] if options.signals
               else default_signals(completed, target))
    reference = None
    ref_column = _name(parse_signal_name(options.reference)[0], options, completed, "--reference")
    if ref_column in completed.columns or ref_column == LR:
        reference = _signal(options.reference, completed, options, "--reference")
    elif options.reference != cka():
        raise AnalysisInputError(f"--reference: no column {options.reference!r}; available: "
                                 f"{', '.join(s.name for s in signals)}")
    inputs = Inputs(completed, tested, target, signals, reference, _methods(completed, options.methods),
                    _epochs(completed, options.early_epochs), options.damage_threshold, options.margins,
                    options.alpha)
    return Prepared(table, completed, excluded, options, shown, inputs, contrasts)

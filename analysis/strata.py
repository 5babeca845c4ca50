"""Strata: the factors a family holds fixed, and the method arms it never pools.

A family declares the factors it *spans* (varies on purpose): `arm`, `lr`, `seed` or a dose
factor such as `gta_lambda`. Every other parameter that varies in the table is held fixed:
the trials split into strata, one per combination of those values, and each stratum is
analysed on its own. The list comes from the table (`varying_parameters`), never from a
fixed list, so a second backbone, dataset or data fraction becomes a stratum by itself.

An arm is a method with the knobs that make a variant of it: regulariser weights
(`<name>_lambda`, written `ft+gta0.5`; 0 = off) and the method's own knobs (`lora_r`, ...,
written `lora[lora_r=4]`) where they vary within that method. Arms are never pooled: where a
family does not span `arm`, the arm is one of the factors held fixed.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from analysis.table import varying_parameters

ARM, LR, SEED = "arm", "lr", "seed"
NO_STRATA = "all"  # the label of the one stratum of a table in which nothing else varies
_LAMBDA = "_lambda"


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def arm_knobs(table: pd.DataFrame) -> list[str]:
    """Varying parameters that make method variants: `<name>_lambda` and knobs named after a method
    or regulariser in the table (`lora_r`, `gta_layers`, ...)."""
    owners = set(table["method"].astype(str)) | {p[: -len(_LAMBDA)] for p in table.columns
                                                 if str(p).endswith(_LAMBDA)}
    return [p for p in varying_parameters(table, exclude=("dataset", "method", SEED))
            if p.endswith(_LAMBDA) or p.split("_")[0] in owners]


def _arm_label(method: str, row: pd.Series, knobs: list[str], varies: dict[str, set[str]]) -> str:
    label, regularisers = method, []
    for knob in knobs:
        value = row[knob]
        if knob.endswith(_LAMBDA):
            if pd.notna(value) and value != 0:
                regularisers.append(f"+{knob[: -len(_LAMBDA)]}{_fmt(value)}")
        elif method in varies[knob]:
            label += f"[{knob}={_fmt(value)}]"
    return label + "".join(regularisers)


def arm_labels(table: pd.DataFrame, exclude: Iterable[str] = ()) -> pd.Series:
    """Each trial's arm: its method plus the knobs that vary (those in `exclude` left out)."""
    knobs = [k for k in arm_knobs(table) if k not in set(exclude)]
    varies = {k: {str(m) for m, rows in table.groupby("method") if rows[k].astype(str).nunique() > 1}
              for k in knobs}
    return pd.Series([_arm_label(str(row["method"]), row, knobs, varies) for _, row in table.iterrows()],
                     index=table.index, dtype=object)


def stratum_factors(table: pd.DataFrame, spans: Iterable[str]) -> list[str]:
    """The factors held fixed by a family spanning `spans`: every varying parameter except the
    spanned ones and the seed; method and its knobs count as one factor, `arm`, unless spanned."""
    spans = set(spans) | {SEED}
    knobs = set(arm_knobs(table))
    varying = varying_parameters(table, exclude=(SEED,))
    fixed = [p for p in varying if p not in spans and p != "method" and p not in knobs]
    arm_varies = "method" in varying or bool(knobs - spans)
    return fixed + ([ARM] if ARM not in spans and arm_varies else [])


def with_arms(table: pd.DataFrame, spans: Iterable[str] = ()) -> pd.DataFrame:
    """The table with its `arm` column, knobs a family spans (a dose over λ, say) left out of it."""
    return table.assign(**{ARM: arm_labels(table, exclude=spans)}) if len(table) else table.assign(**{ARM: []})


def stratum_label(factors: list[str], values: tuple) -> str:
    return ", ".join(f"{f}={_fmt(v)}" for f, v in zip(factors, values)) or NO_STRATA


def stratify(table: pd.DataFrame, spans: Iterable[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """(label, rows with an `arm` column) per stratum, in sorted order; one stratum `all` when
    nothing but the spanned factors varies."""
    spans = list(spans)
    rows = with_arms(table, spans)
    factors = stratum_factors(table, spans)
    if not factors:
        yield NO_STRATA, rows
        return
    # Group on the values' text so a missing value is a value of its own.
    keyed = rows[factors].astype(str)
    for _, group in keyed.groupby(factors, sort=True, dropna=False):  # pandas 3 keeps NaN through astype(str)
        index = group.index
        yield stratum_label(factors, tuple(rows.loc[index[0], f] for f in factors)), rows.loc[index]


def cell_ids(rows: pd.DataFrame) -> np.ndarray:
    """An integer per trial naming its cell: trials alike in every varying parameter but the seed."""
    keys = varying_parameters(rows, exclude=(SEED,))
    if not keys:  # nothing tells the trials apart but the seed: each is a cell of its own
        return np.arange(len(rows))
    return rows[keys].astype(str).groupby(keys, sort=True, dropna=False).ngroup().to_numpy()

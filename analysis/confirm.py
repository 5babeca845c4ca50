"""Confirmatory contrasts: the few tests a study is designed for, Holm-corrected among themselves.

Declared in a spec's `analysis:` section or with `--confirm` (the same YAML list, or a file
holding it), one mapping per contrast: the family as key, what it tests as value, the metric
(short forms such as `retention` allowed), and optionally the stratum:

    confirm:
      - {paired: [ft, lora], metric: retention}             # two arms, at matched lr and seed
      - {dose: lr, metric: retention, where: {arm: ft}}     # a dose factor
      - {predictors: drift/embedding, metric: retention}    # a signal (any signal family)

Every test a declared contrast matches is confirmatory; every other test is exploratory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.families import FAMILIES

PAIR_FAMILIES = ("paired", "unpaired")  # their subject is two arms
_ITEM_KEYS = ("metric", "where")


@dataclass(frozen=True)
class Contrast:
    family: str
    subject: tuple[str, ...]  # two arms (paired, unpaired), a dose factor, or one signal
    metric: str
    where: tuple[tuple[str, str], ...] = ()  # (factor, value) pairs a stratum must have

    def describe(self) -> str:
        what = " vs ".join(self.subject)
        where = "".join(f", {k}={v}" for k, v in self.where)
        return f"{self.family} {what} on {self.metric}{where}"

    def matches(self, row: pd.Series) -> bool:
        """Whether a tests.csv row is this contrast's test (in one of its strata)."""
        if row["family"] != self.family or row["metric"] != self.metric:
            return False
        parts = set(str(row["strata"]).split(", ")) | {f"arm={row['method']}"}
        if any(f"{k}={v}" not in parts for k, v in self.where):
            return False
        if self.family in PAIR_FAMILIES:
            return {row["a"], row["b"]} == set(self.subject)
        return row["a"] in (self.subject[0], f"log10({self.subject[0]})")


def _load(value: Any, field: str) -> Any:
    """A YAML list as text, or the path of a file holding one."""
    import yaml

    try:
        is_file = Path(value).is_file()
    except OSError:  # YAML text too long to be a file name
        is_file = False
    text = Path(value).read_text(encoding="utf-8") if is_file else value
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnalysisInputError(f"{field}: not a YAML list of contrasts ({str(exc).splitlines()[0]})") from exc


def _subject(family: str, value: Any, where: str) -> tuple[str, ...]:
    if family in PAIR_FAMILIES:
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
                and value[0] != value[1]):
            raise AnalysisInputError(f"{where}.{family}: must name two different arms, e.g. [ft, lora]; "
                                     f"got {value!r}")
        return tuple(value)
    if not isinstance(value, str) or not value.strip():
        raise AnalysisInputError(f"{where}.{family}: must name one {'factor' if family == 'dose' else 'signal'}, "
                                 f"got {value!r}")
    return (value.strip(),)


def _contrast(item: Any, where: str) -> Contrast:
    if not isinstance(item, dict):
        raise AnalysisInputError(f"{where}: must be a mapping such as {{paired: [ft, lora], metric: retention}}")
    families = [k for k in item if k in FAMILIES]
    unknown = [k for k in item if k not in FAMILIES and k not in _ITEM_KEYS]
    if unknown or len(families) != 1:
        bad = f"unknown key {unknown[0]!r}" if unknown else f"names {len(families)} families"
        raise AnalysisInputError(f"{where}: {bad}; accepted: one family ({', '.join(FAMILIES)}) and "
                                 f"{', '.join(_ITEM_KEYS)}")
    family = families[0]
    subject = _subject(family, item[family], where)
    metric = item.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise AnalysisInputError(f"{where}.metric: required, one metric name (e.g. retention)")
    stratum = item.get("where") or {}
    if not isinstance(stratum, dict):
        raise AnalysisInputError(f"{where}.where: must map factors to values, e.g. {{model: vit-b32}}")
    pairs = tuple((str(k), f"{v:g}" if isinstance(v, float) else str(v)) for k, v in stratum.items())
    return Contrast(family, subject, metric.strip(), pairs)


def parse_confirm(value: Any, field: str = "confirm") -> list[Contrast]:
    """The declared contrasts (a list of mappings, its YAML text, or a file holding it); [] for none."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        value = _load(value, field)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise AnalysisInputError(f"{field}: must be a list of contrasts, e.g. [{{paired: [ft, lora], "
                                 "metric: retention}]")
    return [_contrast(item, f"{field}[{i}]") for i, item in enumerate(value)]

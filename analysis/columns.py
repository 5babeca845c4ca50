"""Any run table: another tool's column names mapped to driftlab's, and the columns nothing places.

`--columns cifar100_retention=zeroshot/cifar100/retention,delta_entropy_pct=attn/delta_entropy_pct`
(or a YAML file of the same pairs) renames columns so they take driftlab's roles: method, lr,
seed, dataset, model (parameters), retention and drift signals (metric keys). A per-epoch
column follows its base name (`ep1_delta_entropy_pct` -> `epoch1_attn/delta_entropy_pct`).
A column that is none of these is listed in the report as unplaced, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.schema import METADATA_COLUMNS, PARAMETER_COLUMNS
from trainables import keys

_ACCEPTED = ("a trial parameter (dataset, method, model, lr, seed, ...), status / trial_id / run_id, or a "
             "metric key (zeroshot/<task>/retention, attn/delta_<metric>_pct, drift/weight_rel, val/acc, ...)")


def is_placed(name: str) -> bool:
    """Whether a column has a driftlab role: parameter, metadata, metric key, or a key's per-epoch value."""
    split = keys.split_epoch(name)
    base = split[1] if split else name
    return base in PARAMETER_COLUMNS or base in METADATA_COLUMNS or keys.parse(base) is not None


def _pairs(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    text = str(value)
    if Path(text).is_file():
        import yaml

        try:
            loaded = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise AnalysisInputError(f"{field}: {text} is not valid YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(loaded, dict):
            raise AnalysisInputError(f"{field}: {text} must map FOREIGN: DRIFTLAB column names")
        return _pairs(loaded, field)
    pairs = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        if "=" not in item:
            raise AnalysisInputError(f"{field}: {item!r} is not FOREIGN=DRIFTLAB (or a YAML file of such pairs)")
        foreign, ours = item.split("=", 1)
        pairs[foreign.strip()] = ours.strip()
    return pairs


def parse_column_map(value: Any, field: str = "--columns") -> dict[str, str] | None:
    """'a=b,c=d', {a: b} or a YAML file of such pairs -> {foreign: driftlab}; every target a driftlab name."""
    if value is None or value == "" or value == {}:
        return None
    pairs = _pairs(value, field)
    for foreign, ours in pairs.items():
        if not foreign or not is_placed(ours):
            raise AnalysisInputError(f"{field}: {foreign}={ours}: {ours!r} is not a driftlab name; accepted: "
                                     f"{_ACCEPTED}")
    targets = list(pairs.values())
    twice = next((t for t in targets if targets.count(t) > 1), None)
    if twice:
        raise AnalysisInputError(f"{field}: two columns map to {twice!r}")
    return pairs


def apply_column_map(raw: pd.DataFrame, mapping: dict[str, str], source: str,
                     template: str = keys.EPOCH_TEMPLATE) -> pd.DataFrame:
    """Rename `raw`'s columns (and per-epoch columns named by `template`) to driftlab's names."""
    columns = [str(c).strip() for c in raw.columns]
    epoch_of = {c: split for c in columns if (split := keys.split_epoch(c, template))}
    bases = {base for _, base in epoch_of.values()}
    for foreign in mapping:
        if foreign not in columns and foreign not in bases:
            raise AnalysisInputError(f"--columns: no column {foreign!r} in {source}; columns: {', '.join(columns)}")
    renamed = {}
    for c in columns:
        if c in epoch_of:
            epoch, base = epoch_of[c]
            renamed[c] = keys.at_epoch(mapping.get(base, base), epoch)
        else:
            renamed[c] = mapping.get(c, c)
    clash = next((n for n in set(renamed.values()) if list(renamed.values()).count(n) > 1), None)
    if clash:
        raise AnalysisInputError(f"--columns: {clash!r} would name two columns of {source}")
    out = raw.copy()
    out.columns = [renamed[c] for c in columns]
    return out


def unplaced_columns(table: pd.DataFrame) -> list[str]:
    """Columns with no driftlab role (kept: a numeric one is still a metric the tests can use)."""
    return [str(c) for c in table.columns if not is_placed(str(c))]

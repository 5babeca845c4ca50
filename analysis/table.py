"""The tidy trial table: one row per trial, parameter / metadata / metric / per-epoch columns.

Every source (CSV, MLflow, an in-memory DataFrame) goes through `tidy`, so two sources
holding the same trials give the same table: numeric-looking strings become numbers and
columns come in a fixed order (parameters, metadata, metrics, then per-epoch values named
`epoch<k>_<key>`, trainables.keys.at_epoch), which are history, never metrics of their own.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.schema import METADATA_COLUMNS, PARAMETER_COLUMNS, RUNTIME_PARAMETERS, is_completed
from trainables import keys

# A table without these still works: the whole sweep is one dataset / one method.
_GROUP_DEFAULTS = {"dataset": "all", "method": "all"}
_MISSING_TOKENS = ("", "none", "nan", "null")


def _numeric_if_possible(series: pd.Series) -> pd.Series:
    """Strings like '0.001' or '3' become numbers; a column with any non-number stays as is."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series
    # Blank / None / nan strings are missing values (how MLflow params and spreadsheets say "unset").
    values = series.mask(series.astype(str).str.strip().str.lower().isin(_MISSING_TOKENS))
    try:
        return pd.to_numeric(values, errors="raise")
    except (TypeError, ValueError):
        return series


def is_history(column: str) -> bool:
    return keys.split_epoch(str(column)) is not None


def is_per_alpha(column: str) -> bool:
    """A WiSE-FT value at one α (`alpha50_test/acc`), or the latest of a `wise/` metric: not a trial metric."""
    return keys.split_alpha(str(column)) is not None or keys.unwise(str(column)) is not None


def history_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if is_history(c)]


def history_epochs(table: pd.DataFrame) -> list[int]:
    """Epochs >= 1 with at least one per-epoch value (epoch 0 is the pretrained model)."""
    found = {split[0] for c in history_columns(table) if (split := keys.split_epoch(c)) and table[c].notna().any()}
    return sorted(e for e in found if e >= 1)


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Numeric columns that are neither parameters, metadata nor per-epoch values, in table order."""
    skip = set(PARAMETER_COLUMNS) | set(METADATA_COLUMNS)
    return [c for c in table.columns if c not in skip and not is_history(c) and not is_per_alpha(c)
            and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]


def parameter_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in PARAMETER_COLUMNS if c in table.columns]


def varying_parameters(table: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Parameters taking more than one value (a missing value counts as a value of its own)."""
    skip = set(exclude) | RUNTIME_PARAMETERS
    return [c for c in parameter_columns(table)
            if c not in skip and table[c].astype(str).nunique(dropna=False) > 1]


def zero_shot_tasks(table: pd.DataFrame) -> list[str]:
    """Zero-shot tasks as key segments, first task first: from the `zero_shot` parameter (a list, as
    MLflow logs it) where set, else from the retention columns in table order."""
    if "zero_shot" in table.columns:
        for value in table["zero_shot"].dropna():
            try:
                tasks = ast.literal_eval(value) if isinstance(value, str) else value
            except (ValueError, SyntaxError):
                tasks = [value]
            if isinstance(tasks, (list, tuple)) and tasks:
                return [keys.task_segment(str(t)) for t in tasks]
    return [p.subject for c in table.columns if (p := keys.parse(str(c))) and keys.is_retention(str(c)) and not p.best]


def resolve_metric(name: str, table: pd.DataFrame, field: str) -> str:
    """A short form (`retention`, `best/retention`, ...) -> the key for the table's first zero-shot task."""
    try:
        return keys.resolve(name, zero_shot_tasks(table))
    except ValueError as exc:
        raise AnalysisInputError(f"{field}: {exc}") from None


def check_metrics(table: pd.DataFrame, metrics: list[str] | None, field: str = "--metrics") -> list[str] | None:
    """The requested metrics resolved to columns of the table; one line naming the field if one is not."""
    if metrics is None:
        return None
    available = metric_columns(table)
    resolved = [resolve_metric(m, table, field) for m in metrics]
    for name, metric in zip(metrics, resolved):
        if metric not in available:
            raise AnalysisInputError(f"{field}: no numeric metric column {name!r}; available: "
                                     f"{', '.join(available) or '(none)'}")
    return list(dict.fromkeys(resolved))


def tidy(raw: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Normalise any per-trial frame into the tidy table (see module docstring); `metrics`, if given,
    must name metric columns (short forms allowed). Every metric column is kept."""
    # Built in one go: a wide MLflow table (per-layer and per-epoch keys) fragments when set column by column.
    table = pd.DataFrame({str(c).strip(): _numeric_if_possible(raw[c]) for c in raw.columns}, index=raw.index)
    for column, default in _GROUP_DEFAULTS.items():
        if column not in table.columns:
            table[column] = default
        table[column] = table[column].astype(str)
    check_metrics(table, metrics)
    if not metric_columns(table):
        raise AnalysisInputError("--metrics: the table has no numeric metric columns (besides parameters "
                                 f"and metadata); columns: {', '.join(map(str, table.columns))}")
    params, found, history = parameter_columns(table), metric_columns(table), history_columns(table)
    meta = [c for c in table.columns if c not in params and c not in found and c not in history]
    return table[params + meta + found + history].reset_index(drop=True)


def table_from_csv(path: str | Path, metrics: list[str] | None = None, columns: dict[str, str] | None = None,
                   epoch_template: str = keys.EPOCH_TEMPLATE) -> pd.DataFrame:
    """Read a one-row-per-trial (or long, one row per trial and epoch) CSV into the tidy table.

    `columns` renames a foreign table's columns to driftlab's names (analysis/columns.py);
    `epoch_template` names its per-epoch columns (analysis/history.py).
    """
    from analysis.columns import apply_column_map
    from analysis.history import fold_history

    path = Path(path)
    if not path.is_file():
        raise AnalysisInputError(f"--csv: no such file: {path}")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AnalysisInputError(f"--csv: {path} is not a readable CSV ({str(exc).splitlines()[0]})") from exc
    if raw.empty:
        raise AnalysisInputError(f"--csv: {path} has a header but no trial rows")
    raw = apply_column_map(raw, columns or {}, path.name, epoch_template)
    return tidy(fold_history(raw, epoch_template), metrics)


def split_completed(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """(completed trials, {status: count} of the excluded ones: diverged, failed, ...).

    A trial without a dataset or method (a run whose params never reached MLflow) cannot be
    placed in any cell: it is excluded as "missing parameters" rather than grouped under NaN.
    """
    status = table["status"].astype(str).str.strip() if "status" in table.columns else \
        pd.Series("completed", index=table.index)
    missing = table[[c for c in _GROUP_DEFAULTS if c in table.columns]].isna().any(axis=1)
    status = status.mask(missing, "missing parameters")
    keep = status.map(is_completed).astype(bool)
    excluded = status[~keep].value_counts()
    return table[keep].reset_index(drop=True), {str(k): int(v) for k, v in excluded.items()}

"""The tidy trial table: one row per trial, parameter / metadata / metric columns.

Every source (CSV, MLflow, an in-memory DataFrame) goes through `tidy`, so two sources
holding the same trials give the same table: numeric-looking strings become numbers,
columns come in a fixed order (parameters, metadata, metrics), and only the requested
metric columns survive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from analysis.options import AnalysisInputError
from analysis.schema import METADATA_COLUMNS, PARAMETER_COLUMNS, RUNTIME_PARAMETERS, is_completed

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


def metric_columns(table: pd.DataFrame) -> list[str]:
    """Numeric columns that are neither parameters nor metadata, in table order."""
    skip = set(PARAMETER_COLUMNS) | set(METADATA_COLUMNS)
    return [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])]


def parameter_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in PARAMETER_COLUMNS if c in table.columns]


def varying_parameters(table: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Parameters taking more than one value (a missing value counts as a value of its own)."""
    skip = set(exclude) | RUNTIME_PARAMETERS
    return [c for c in parameter_columns(table)
            if c not in skip and table[c].astype(str).nunique(dropna=False) > 1]


def _select_metrics(table: pd.DataFrame, metrics: list[str] | None) -> list[str]:
    available = metric_columns(table)
    if metrics is None:
        chosen = [m for m in available if table[m].notna().any()]
    else:
        for m in metrics:
            if m not in available:
                raise AnalysisInputError(f"--metrics: no numeric metric column {m!r}; available: "
                                         f"{', '.join(available) or '(none)'}")
        chosen = list(metrics)
    if not chosen:
        raise AnalysisInputError("--metrics: the table has no numeric metric columns (besides parameters "
                                 f"and metadata); columns: {', '.join(map(str, table.columns))}")
    return chosen


def tidy(raw: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Normalise any per-trial frame into the tidy table (see module docstring)."""
    table = raw.copy()
    table.columns = [str(c).strip() for c in table.columns]
    for column in table.columns:
        table[column] = _numeric_if_possible(table[column])
    for column, default in _GROUP_DEFAULTS.items():
        if column not in table.columns:
            table[column] = default
        table[column] = table[column].astype(str)
    chosen = _select_metrics(table, metrics)
    params = parameter_columns(table)
    all_metrics = set(metric_columns(table))
    meta = [c for c in table.columns if c not in params and c not in all_metrics]
    return table[params + meta + chosen].reset_index(drop=True)


def table_from_csv(path: str | Path, metrics: list[str] | None = None) -> pd.DataFrame:
    """Read a one-row-per-trial CSV into the tidy table."""
    path = Path(path)
    if not path.is_file():
        raise AnalysisInputError(f"--csv: no such file: {path}")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AnalysisInputError(f"--csv: {path} is not a readable CSV ({str(exc).splitlines()[0]})") from exc
    if raw.empty:
        raise AnalysisInputError(f"--csv: {path} has a header but no trial rows")
    return tidy(raw, metrics)


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

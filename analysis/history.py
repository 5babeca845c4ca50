"""Per-epoch values of each trial (for early warning), from a long table or from MLflow.

In the tidy table the value of `key` after epoch k is the column `epoch<k>_<key>`
(trainables.keys.at_epoch; epoch 0 = the pretrained model). A CSV can hold them as such
columns (another prefix is declared with `--epoch-template`, analysis/columns.py renames
them), or in long form: one row per trial and epoch with an `epoch` column, folded here.
"""

from __future__ import annotations

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.schema import METADATA_COLUMNS, PARAMETER_COLUMNS
from trainables import keys

EPOCH = "epoch"
TRIAL_KEYS = ("run_id", "trial_id")  # what names a trial in a long table, else its parameters


def _trial_key(raw: pd.DataFrame) -> pd.Series | None:
    named = [c for c in TRIAL_KEYS if c in raw.columns]
    by = named[:1] or [c for c in PARAMETER_COLUMNS if c in raw.columns]
    return raw[by].astype(str).agg("|".join, axis=1) if by else None


def fold_history(raw: pd.DataFrame, template: str = keys.EPOCH_TEMPLATE) -> pd.DataFrame:
    """A long table (several rows per trial, an `epoch` column) -> one row per trial: its last epoch's
    values, and every metric's earlier values as per-epoch columns. Any other table comes back as is."""
    trial = _trial_key(raw) if EPOCH in raw.columns else None
    if trial is None or not trial.duplicated().any():
        return raw
    epoch = pd.to_numeric(raw[EPOCH], errors="coerce")
    if epoch.isna().any() or (epoch % 1 != 0).any():
        raise AnalysisInputError("epoch: a long table needs a whole-number epoch in every row")
    ordered = raw.assign(**{EPOCH: epoch.astype(int), "_trial": trial}).sort_values(["_trial", EPOCH], kind="stable")
    skip = set(PARAMETER_COLUMNS) | set(METADATA_COLUMNS) | {"_trial"}
    metrics = [c for c in raw.columns if c not in skip and pd.api.types.is_numeric_dtype(raw[c])]
    wide = ordered.pivot_table(index="_trial", columns=EPOCH, values=metrics, aggfunc="last", dropna=False)
    wide.columns = [keys.at_epoch(metric, e) for metric, e in wide.columns]
    final = ordered.groupby("_trial", sort=False).tail(1).set_index("_trial")
    return final.join(wide).reset_index(drop=True)

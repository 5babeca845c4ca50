"""What the columns of a sweep table mean: parameters, metadata, metrics and their direction.

Declared once here so the table reader, the tests, the report and the figures agree on
which columns are grid parameters and which are bookkeeping. Metric names, their parts and
their direction come from driftlab's key module (trainables/keys.py: standard library only,
the one module analysis takes from trainables).
"""

from __future__ import annotations

from trainables.keys import attn_delta

# Every trial-config key (trainables.config.TrialConfig's fields, by name: importing it would
# pull torch; tests/test_analysis.py checks the two agree). Columns with these names are
# parameters; anything else non-numeric, or listed in METADATA_COLUMNS, is metadata.
PARAMETER_COLUMNS: tuple[str, ...] = (
    "dataset", "method", "model", "lr", "seed", "gta_lambda", "gta_layers",
    "apr_lambda", "entropy_floor_lambda", "entropy_floor_ratio", "box_lambda", "box_target", "box_loss", "data_fraction",
    "epochs", "batch_size", "weight_decay", "warmup_frac", "grad_clip",
    "lora_r", "lora_alpha", "lora_targets", "lora_train_projection", "tune_last", "dwconv_layers", "dwconv_kernel",
    "vera_r", "adapter_dim", "adapter_sites",
    "lp_epochs", "lp_lr", "head_init", "zero_shot", "zeroshot_templates", "eval_every", "probe_size",
    "zeroshot_size", "device", "stop_metric", "stop_above", "stop_below", "stop_patience", "stop_every_steps",
    "wise_alphas", "source_cache_mib",
)

# Parameters that change how a trial runs but not what it computes; never grid keys.
RUNTIME_PARAMETERS: frozenset[str] = frozenset({"device", "wise_alphas", "source_cache_mib"})

# Bookkeeping columns, excluded from metrics even when numeric (a trial_id of 7 is no metric).
METADATA_COLUMNS: tuple[str, ...] = (
    "status", "trial_id", "run_id", "run_name", "experiment_id", "parent_run_id",
    "start_time", "end_time", "duration", "error", "hostname", "node_ip", "pid", "epoch", "phase",
)

# A trial counts when its status is one of these (driftlab tag or MLflow run status).
# `stopped_drift`: ended by its drift stop rule, with a selected model like a completed trial.
COMPLETED_STATUSES: frozenset[str] = frozenset({"completed", "finished", "stopped_drift"})

# Attention-support change metrics (association family, retention-vs-entropy figure).
SUPPORT_CHANGE_METRICS: tuple[str, ...] = (attn_delta("entropy"), attn_delta("mass95"))


def is_completed(status: object) -> bool:
    """Missing status means the source did not track it: such a trial counts as completed."""
    if status is None or (isinstance(status, float) and status != status):
        return True
    return str(status).strip().lower() in COMPLETED_STATUSES

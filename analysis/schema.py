"""What the columns of a sweep table mean: parameters, metadata, metrics and their direction.

Declared once here so the table reader, the tests, the report and the figures agree on
which columns are grid parameters, which are bookkeeping, and whether a metric is better
high, low, or neither.
"""

from __future__ import annotations

import re

# Every trial-config key (see trainables.config.TrialConfig; duplicated by name, not
# imported, because analysis must not import trainables). Columns with these names are
# parameters; anything else non-numeric, or listed in METADATA_COLUMNS, is metadata.
PARAMETER_COLUMNS: tuple[str, ...] = (
    "dataset", "method", "model", "lr", "seed", "gta_lambda", "gta_layers", "data_fraction",
    "epochs", "batch_size", "weight_decay", "warmup_frac", "grad_clip",
    "lora_r", "lora_alpha", "lora_targets", "adapter_dim", "adapter_sites",
    "lp_epochs", "lp_lr", "head_init", "zero_shot", "eval_every", "probe_size",
    "zeroshot_size", "num_workers", "device", "fault",
)

# Parameters that change how a trial runs but not what it computes; never grid keys.
RUNTIME_PARAMETERS: frozenset[str] = frozenset({"device", "num_workers"})

# Bookkeeping columns, excluded from metrics even when numeric (a trial_id of 7 is no metric).
METADATA_COLUMNS: tuple[str, ...] = (
    "status", "trial_id", "run_id", "run_name", "experiment_id", "parent_run_id",
    "start_time", "end_time", "duration", "error", "hostname", "node_ip", "pid",
)

# A trial counts when its status is one of these (driftlab tag or MLflow run status).
COMPLETED_STATUSES: frozenset[str] = frozenset({"completed", "finished"})

# Attention-support change metrics and the zero-shot retention pattern (association family).
SUPPORT_CHANGE_METRICS: tuple[str, ...] = ("attn/delta_entropy_pct", "attn/delta_mass95_pct")
RETENTION_PATTERN = re.compile(r"^zeroshot/.+/retention$")
LAYER_ENTROPY_PATTERN = re.compile(r"^attn/entropy/layer_(\d+)$")
# Per-layer breakdowns feed figures; testing each layer by default would multiply the
# Holm families many times over and drown the headline metrics.
PER_LAYER_PATTERN = re.compile(r"/layer_\d+$")

# Direction by name fragment, checked in order: the first fragment found in the metric
# name decides. Attention metrics come early: they describe behaviour, not quality.
_DIRECTION_RULES: tuple[tuple[str, bool | None], ...] = (
    ("box_alignment", True),  # attention on the object: the one attention metric with a better side
    ("attn/", None),
    ("loss", False),
    ("retention", True),
    ("acc", True),
    ("cka", True),
)


def higher_is_better(metric: str) -> bool | None:
    """True if larger is better, False if smaller is better, None if neutral or unknown."""
    name = metric.lower()
    for fragment, direction in _DIRECTION_RULES:
        if fragment in name:
            return direction
    return None


def is_per_layer(metric: str) -> bool:
    return bool(PER_LAYER_PATTERN.search(metric))


def is_retention(metric: str) -> bool:
    return bool(RETENTION_PATTERN.match(metric))


def is_completed(status: object) -> bool:
    """Missing status means the source did not track it: such a trial counts as completed."""
    if status is None or (isinstance(status, float) and status != status):
        return True
    return str(status).strip().lower() in COMPLETED_STATUSES

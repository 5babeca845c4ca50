"""driftlab's names in MLflow: every metric key (built, parsed, given a direction), the run tags, the UI link.

Standard library only, so trainables, orchestrator and analysis all import it (analysis
without pulling torch or Ray). The metric-key grammar, `/`-namespaced:

    train/loss   train/<regulariser>_penalty   val/acc   test/acc   time/train_s   time/trial_s
    attn/<metric>/layer_<i>   attn/<metric>/mean           (the attention metrics of trainables/evaluate.py)
    attn/delta_<metric>_pct   attn/delta_<metric>_pct/layer_<i>   (% change against the pretrained model)
    repr/cka/layer_<i>   repr/cka/mean
    zeroshot/<task>/acc   zeroshot/<task>/retention   (<task> = `task_segment(dataset name)`)
    drift/weight_rel   drift/embedding   params/trainable   params/trainable_pct
    best/<any key above>   best/epoch                  (the best-validation epoch's values)
    stop/epoch   stop/compute_frac                     (when a drift stop rule ended the trial)
    wise/<any measured key>   wise/test/acc            (WiSE-FT: step = round(100·α), trainables/wise.py)
    sweep/wall_s   sweep/trials   sweep/<outcome>      (the parent run's summary, not a trial's)

    key = attn("entropy", layer=3)          # 'attn/entropy/layer_3'
    parse(key)                              # Key(kind='attn', metric='entropy', layer=3)
    higher_is_better("zeroshot/x/retention")  # True

A spec may name a metric by a short form (`retention`, `zeroshot_acc`): `resolve` turns it into
the key of the trial's first zero-shot task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRAIN_LOSS, VAL_ACC, TEST_ACC = "train/loss", "val/acc", "test/acc"
TRAIN_S, TRIAL_S = "time/train_s", "time/trial_s"
WEIGHT_DRIFT, EMBEDDING_DRIFT = "drift/weight_rel", "drift/embedding"
TRAINABLE, TRAINABLE_PCT = "params/trainable", "params/trainable_pct"
BEST_EPOCH = "best/epoch"
# A stop rule that fired: the epoch it fired at, and the fraction of the configured optimiser steps run.
STOP_EPOCH, STOP_COMPUTE = "stop/epoch", "stop/compute_frac"
WISE = "wise/"
UNSYNCED = "tracking/unsynced"  # reported to Tune only: how many log calls never reached MLflow
BEST = "best/"

# Keys with no variable part, and whether larger is better (None: describes change, not quality).
FIXED: dict[str, bool | None] = {
    TRAIN_LOSS: False, VAL_ACC: True, TEST_ACC: True, TRAIN_S: None, TRIAL_S: None,
    WEIGHT_DRIFT: None, EMBEDDING_DRIFT: None, TRAINABLE: False, TRAINABLE_PCT: False, "epoch": None,
    STOP_EPOCH: None, STOP_COMPUTE: None,
}
# Attention metrics describe behaviour, not quality; these few have a better side.
ATTENTION_DIRECTIONS: dict[str, bool] = {"box_alignment": True}
# Spec short forms -> the zero-shot key of the trial's first zero-shot task.
SHORT_FORMS: dict[str, str] = {"retention": "retention", "zeroshot_acc": "acc"}

# MLflow run tags driftlab sets (and the analysis reads).
KIND_TAG, STATUS_TAG, TRIAL_TAG = "driftlab.kind", "driftlab.status", "driftlab.trial_id"
PARENT_TAG = "mlflow.parentRunId"
# The UI reads this tag; the `workflowType` query of `experiment_url` is what opens the runs table.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


# ---- builders -----------------------------------------------------------------------------------

def _where(layer: int | None) -> str:
    return "mean" if layer is None else f"layer_{layer}"


def attn(metric: str, layer: int | None = None) -> str:
    """`attn/<metric>/layer_<i>`, or `attn/<metric>/mean` without a layer."""
    return f"attn/{metric}/{_where(layer)}"


def attn_delta(metric: str, layer: int | None = None) -> str:
    """`attn/delta_<metric>_pct` (of the mean), or `.../layer_<i>`: % change against the pretrained model."""
    return f"attn/delta_{metric}_pct" + ("" if layer is None else f"/layer_{layer}")


def cka(layer: int | None = None) -> str:
    return f"repr/cka/{_where(layer)}"


def zeroshot_acc(task: str) -> str:
    return f"zeroshot/{task}/acc"


def retention(task: str) -> str:
    """`zeroshot/<task>/retention`: tuned zero-shot accuracy / pretrained, in %."""
    return f"zeroshot/{task}/retention"


def penalty(regulariser: str) -> str:
    return f"train/{regulariser}_penalty"


def best(key: str) -> str:
    return BEST + key


def wise(key: str) -> str:
    """`wise/<key>`: `key` measured on the WiSE-FT interpolation; logged at step = round(100·α)."""
    return WISE + key


def unwise(name: str) -> str | None:
    """The measured key inside a `wise/<key>` name, else None."""
    return name[len(WISE):] if name.startswith(WISE) else None


def sweep(name: str) -> str:
    """`sweep/<name>`: the parent run's summary (`wall_s`, `trials`, a count per trial outcome)."""
    return f"sweep/{name}"


def task_segment(name: str) -> str:
    """A dataset name as one key segment: `embedded/colour` -> `embedded_colour`,
    `uoft-cs/cifar100` -> `uoft-cs_cifar100`, a local path -> its file or folder name without suffix."""
    if not name.startswith("embedded/") and Path(name).exists():
        return Path(name).stem
    return name.replace("/", "_")


def experiment_url(tracking_uri: str, experiment_id: str) -> str:
    """The MLflow UI page of an experiment's runs table (MLflow 3 opens on GenAI traces without the query)."""
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"


# ---- parsing --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """A parsed key. kind: fixed | attn | attn_delta | cka | zeroshot | penalty.

    metric: the whole key for `fixed`, the attention metric, `acc`/`retention` for zeroshot;
    subject: the zero-shot task or the regulariser; layer: None for a mean or a single value.
    """

    kind: str
    metric: str = ""
    subject: str = ""
    layer: int | None = None
    best: bool = False

    def __str__(self) -> str:
        body = {"fixed": lambda: self.metric, "attn": lambda: attn(self.metric, self.layer),
                "attn_delta": lambda: attn_delta(self.metric, self.layer), "cka": lambda: cka(self.layer),
                "zeroshot": lambda: f"zeroshot/{self.subject}/{self.metric}",
                "penalty": lambda: penalty(self.subject)}[self.kind]()
        return best(body) if self.best else body


_NAME = r"[a-z0-9][a-z0-9_]*"
_LAYER = r"(?:mean|layer_(?P<layer>\d+))"
_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("attn_delta", rf"attn/delta_(?P<metric>{_NAME})_pct(?:/layer_(?P<layer>\d+))?"),
    ("attn", rf"attn/(?!delta_)(?P<metric>{_NAME})/{_LAYER}"),
    ("cka", rf"repr/cka/{_LAYER}"),
    ("zeroshot", r"zeroshot/(?P<subject>[^/]+)/(?P<metric>acc|retention)"),
    ("penalty", rf"train/(?P<subject>{_NAME})_penalty"),
))


def parse(key: str) -> Key | None:
    """The parts of a driftlab key, or None for a name outside the grammar (a foreign CSV column, say)."""
    is_best = key.startswith(BEST)
    body = key[len(BEST):] if is_best else key
    if body in FIXED:
        return None if body == "epoch" and not is_best else Key("fixed", body, best=is_best)
    for kind, pattern in _PATTERNS:
        m = pattern.fullmatch(body)
        if m:
            parts = m.groupdict()
            layer = parts.get("layer")
            return Key(kind, parts.get("metric") or "", parts.get("subject") or "",
                       None if layer is None else int(layer), is_best)
    return None


def measured(key: str) -> bool:
    """A measurement of the model (accuracy, attention, representation, zero-shot, drift), not a
    training log or timing: what the best-validation epoch carries under `best/`."""
    parsed = parse(key)
    if parsed is None or parsed.best or parsed.kind == "penalty":
        return False
    return parsed.kind != "fixed" or parsed.metric in (VAL_ACC, TEST_ACC, WEIGHT_DRIFT, EMBEDDING_DRIFT)


def is_retention(key: str, best: bool | None = None) -> bool:
    """A zero-shot retention key; `best=False` only the last epoch's, `best=True` only a `best/` one."""
    parsed = parse(key)
    return (parsed is not None and parsed.kind == "zeroshot" and parsed.metric == "retention"
            and (best is None or parsed.best == best))


def is_per_layer(key: str) -> bool:
    parsed = parse(key)
    return parsed is not None and parsed.layer is not None


def layer_of(key: str, kind: str, metric: str) -> int | None:
    """The layer of a per-layer key of this kind and metric (e.g. `attn`, `entropy`), else None."""
    parsed = parse(key)
    if parsed is None or parsed.best or (parsed.kind, parsed.metric) != (kind, metric):
        return None
    return parsed.layer


# ---- direction ------------------------------------------------------------------------------------

# Names outside the grammar (foreign CSV columns): the first fragment found decides.
_FOREIGN_RULES: tuple[tuple[str, bool | None], ...] = (
    ("box_alignment", True), ("attn/", None), ("loss", False), ("retention", True), ("acc", True), ("cka", True))


def higher_is_better(key: str) -> bool | None:
    """True if larger is better, False if smaller is better, None if neutral or unknown."""
    parsed = parse(key)
    if parsed is None:
        name = key.lower()
        return next((direction for fragment, direction in _FOREIGN_RULES if fragment in name), None)
    if parsed.kind == "fixed":
        return FIXED[parsed.metric]
    if parsed.kind in ("attn", "attn_delta"):
        return ATTENTION_DIRECTIONS.get(parsed.metric)
    return {"cka": True, "zeroshot": True, "penalty": None}[parsed.kind]


# ---- spec short forms ----------------------------------------------------------------------------

def resolve(name: str, tasks: list[str]) -> str:
    """A short form (`retention`, `zeroshot_acc`, or `best/` + one) -> the key for the first of `tasks`
    (key segments); any other name comes back unchanged. ValueError when a short form has no task."""
    is_best = name.startswith(BEST)
    short = name[len(BEST):] if is_best else name
    if short not in SHORT_FORMS:
        return name
    if not tasks:
        raise ValueError(f"{name!r} means the first zero-shot task's {SHORT_FORMS[short]}, and the trial has "
                         "no zero-shot task")
    key = f"zeroshot/{tasks[0]}/{SHORT_FORMS[short]}"
    return best(key) if is_best else key


# ---- per-epoch values and drift reading (the analysis' predictors and early warning) --------------

# A key's value at epoch k in a one-row-per-trial table: `epoch1_drift/embedding`. A foreign table
# may declare another template; `{k}` stands for the epoch.
EPOCH_TEMPLATE = "epoch{k}_"


def _epoch_pattern(template: str) -> re.Pattern:
    head, _, tail = template.partition("{k}")
    return re.compile(re.escape(head) + r"(?P<epoch>\d+)" + re.escape(tail) + r"(?P<key>.+)")


def at_epoch(key: str, epoch: int, template: str = EPOCH_TEMPLATE) -> str:
    """The column holding `key`'s value after `epoch` epochs (epoch 0 = the pretrained model)."""
    return template.replace("{k}", str(int(epoch))) + key


def split_epoch(name: str, template: str = EPOCH_TEMPLATE) -> tuple[int, str] | None:
    """(epoch, key) of a per-epoch column name, or None for any other name."""
    m = _epoch_pattern(template).fullmatch(name)
    return None if m is None else (int(m["epoch"]), m["key"])


# A key's WiSE-FT value at step k = round(100·α) in a one-row-per-trial table: `alpha50_test/acc`.
ALPHA_TEMPLATE = "alpha{k}_"


def at_alpha(key: str, step: int) -> str:
    """The column holding `key` measured on θ(α), α = step / 100."""
    return at_epoch(key, step, ALPHA_TEMPLATE)


def split_alpha(name: str) -> tuple[int, str] | None:
    """(step, key) of a WiSE-FT column name, or None for any other name."""
    return split_epoch(name, ALPHA_TEMPLATE)


def drift_direction(key: str) -> int | None:
    """How a key reads as distance from the pretrained model.

    +1: larger = further (weight and embedding drift); -1: larger = closer (CKA);
    0: a signed change whose magnitude is the drift (attention Δ%); None: not a drift signal.
    """
    parsed = parse(key)
    if parsed is None:
        return None
    if parsed.kind == "attn_delta":
        return 0
    if parsed.kind == "cka":
        return -1
    return 1 if parsed.kind == "fixed" and parsed.metric in (WEIGHT_DRIFT, EMBEDDING_DRIFT) else None

"""The trial config: one flat dict in, one validated dataclass out.

Every key is a field below (and a `driftlab trial --flag`); values may arrive as strings
(CLI, env) or as YAML/JSON types and are coerced. An unknown key or a bad value raises
`ConfigError` with one line naming the key and what it accepts, before any work starts.
The knobs of a method or regulariser (`lora_targets`, `gta_layers`, ...) are checked by the
file that declares them (trainables/methods/), asked from `validate`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.data import check_dataset_name
from trainables.errors import ConfigError, one_of, require
from trainables import stop_rule, wise_grid
from trainables.methods import METHODS, REGULARISERS

HEAD_INITS = ("random", "zeroshot")
# Defaults sized for the embedded world (2048 training images, a 64-wide tower): wrong for a real model
# or dataset, where a study sets them (orchestrator/sweeps/matched_lr.yaml sets every one).
EMBEDDED_CALIBRATED = ("lr", "epochs", "batch_size", "data_fraction", "zeroshot_size", "probe_size")
# `first` is the single-prompt protocol ("a photo of a {}." for the CIFAR-style tasks) many studies
# report retention with; `all` averages the task's whole prompt ensemble.
ZEROSHOT_TEMPLATES = ("all", "first")
DEVICES = ("auto", "cpu", "cuda")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass
class TrialConfig:
    """One trial. Defaults: the embedded world's calibrated setting, the demo's (orchestrator/sweeps/demo.yaml):
    full fine-tuning of the embedded tiny CLIP on half the shade task's training split, 3 epochs at batch 32
    (96 optimiser steps), zero-shot colour held out and read on 360 images. Real models and datasets set the
    EMBEDDED_CALIBRATED keys themselves (`calibrated_defaults_left` names those they leave)."""

    model: str = "embedded"
    dataset: str = "embedded/shade"
    zero_shot: list[str] = field(default_factory=lambda: ["embedded/colour"])
    method: str = "ft"
    gta_lambda: float = 0.0
    gta_layers: list[int] = field(default_factory=list)  # empty = every layer
    apr_lambda: float = 0.0
    entropy_floor_lambda: float = 0.0
    entropy_floor_ratio: float = 0.7
    box_lambda: float = 0.0
    box_target: str = "hard"
    box_loss: str = "bce"
    # Memory for the frozen source tower's [CLS] logits per training image, reused every epoch when
    # inputs repeat (no augmentation); past it the rest are recomputed each step; 0 = always recompute.
    source_cache_mib: float = 1024.0
    lr: float = 1e-3
    seed: int = 0
    epochs: int = 3
    batch_size: int = 32
    weight_decay: float = 0.05
    warmup_frac: float = 0.1
    grad_clip: float = 1.0
    data_fraction: float = 0.5  # share of the training split, drawn per seed
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_targets: list[str] = field(default_factory=lambda: ["q", "v"])
    lora_train_projection: bool = False  # also train the visual projection (the frozen-projection arm is False)
    tune_last: int = 1
    dwconv_layers: list[int] = field(default_factory=list)  # empty = every layer
    dwconv_kernel: int = 3
    vera_r: int = 256
    adapter_dim: int = 16
    adapter_sites: list[str] = field(default_factory=lambda: ["attn", "mlp"])
    lp_epochs: int = 1
    lp_lr: float = 1e-2
    head_init: str = "random"
    eval_every: int = 1
    probe_size: int = 32
    zeroshot_size: int = 360  # images per zero-shot task per evaluation; 0 = the whole split
    zeroshot_templates: str = "all"  # all: the task's prompt ensemble; first: its first prompt only
    device: str = "auto"
    # Drift-aware stopping (trainables/stop_rule.py): off while stop_metric is empty.
    stop_metric: str = ""
    stop_above: float | None = None
    stop_below: float | None = None
    stop_patience: int = 1
    stop_every_steps: int = 0  # > 0: check the rule on a small probe every N optimiser steps, not per epoch
    # WiSE-FT at the trial's end (trainables/wise.py): the α grid; empty = off.
    wise_alphas: list[float] = field(default_factory=list)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrialConfig":
        """Build and validate from a flat dict; raise ConfigError on the first problem."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{key}: unknown trial config key{hint}; accepted: {', '.join(names)}")
        kwargs = {f.name: _coerce(f.name, f.type, values[f.name]) for f in dataclasses.fields(cls) if f.name in values}
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        one_of("method", self.method, tuple(METHODS))
        one_of("head_init", self.head_init, HEAD_INITS)
        one_of("zeroshot_templates", self.zeroshot_templates, ZEROSHOT_TEMPLATES)
        one_of("device", self.device, DEVICES)
        require("lr", self.lr > 0, "a number > 0")
        for key in ("epochs", "batch_size", "eval_every", "probe_size"):
            require(key, getattr(self, key) >= 1, "an integer >= 1")
        for key in ("weight_decay", "grad_clip", "zeroshot_size", "source_cache_mib"):
            require(key, getattr(self, key) >= 0, "a number >= 0")
        require("warmup_frac", 0 <= self.warmup_frac < 1, "a number in [0, 1)")
        require("data_fraction", 0 < self.data_fraction <= 1, "a number in (0, 1]")
        for owner in (*METHODS.values(), *REGULARISERS.values()):  # every method's knobs, whichever runs
            if hasattr(owner, "check"):
                owner.check(self)
        stop_rule.check(self)
        wise_grid.check("wise_alphas", self.wise_alphas)
        _check_model(self.model)
        check_dataset_name("dataset", self.dataset, zero_shot=False)
        for task in self.zero_shot:
            check_dataset_name("zero_shot", task, zero_shot=True)


def calibrated_defaults_left(points: list[dict[str, Any]]) -> list[str]:
    """The EMBEDDED_CALIBRATED keys that trial configs (flat dicts, as given) for another model or dataset
    leave at their embedded defaults, in EMBEDDED_CALIBRATED's order; [] when every one is on the embedded
    world."""
    defaults, left = TrialConfig(), set()
    for values in points:
        if values.get("model", defaults.model) != "embedded" or \
                not str(values.get("dataset", defaults.dataset)).startswith("embedded/"):
            left.update(key for key in EMBEDDED_CALIBRATED if key not in values)
    return [key for key in EMBEDDED_CALIBRATED if key in left]


def calibrated_note(points: list[dict[str, Any]]) -> str:
    """One line saying which embedded-world defaults trial configs for a real model or dataset run with
    (see calibrated_defaults_left); "" when they leave none."""
    left = calibrated_defaults_left(points)
    if not left:
        return ""
    defaults = TrialConfig()
    shown = ", ".join(f"{key} {getattr(defaults, key):g}" for key in left)
    return (f"note: {shown}: the embedded world's defaults, left as they are for another model or dataset; "
            "set them for yours (orchestrator/sweeps/matched_lr.yaml sets each)")


def _check_model(model: str) -> None:
    """A value that is clearly a filesystem path must exist; hub ids are checked when loaded."""
    looks_like_path = model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model
    if model != "embedded" and looks_like_path and not Path(model).expanduser().exists():
        raise ConfigError(f"model: {model!r} does not exist; give `embedded`, a hub id (org/name) "
                          "or a directory written by save_pretrained")


def _coerce(key: str, type_name: str, value: Any) -> Any:
    """Turn CLI strings / YAML scalars into the field's type, or raise one clear line."""
    optional = type_name.endswith(" | None")
    if optional:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        type_name = type_name.removesuffix(" | None")
    try:
        if type_name == "float":
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise TypeError  # inf / nan would train to "diverged" instead of being refused up front
            return float(value)
        if type_name == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if type_name == "bool":
            if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
                return _BOOLEANS[value.strip().lower()]
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
            raise TypeError
        if type_name == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
        if type_name.startswith("list"):
            if isinstance(value, str):
                items = [] if value.strip().lower() in ("", "none", "all") else [v.strip() for v in value.split(",")]
            elif isinstance(value, (list, tuple)):
                items = list(value)
            else:
                raise TypeError
            cast = {"list[int]": _whole, "list[float]": _finite}.get(type_name, str)
            return [cast(v) for v in items]
    except (TypeError, ValueError):
        pass
    else:
        return value
    kind = {"float": "a finite number", "int": "an integer", "str": "a string", "bool": "true or false",
            "list[float]": "a comma-separated list of numbers"}.get(type_name, "a comma-separated list")
    if optional:
        kind += " or none"
    raise ConfigError(f"{key}: must be {kind}, got {value!r}")


def _whole(value: Any) -> int:
    return int(value)


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not math.isfinite(float(value)):
        raise TypeError
    return float(value)

"""User-facing analysis options, and their one-line errors.

The same parsers serve the CLI flags, keyword arguments and the `analysis:` section of a
sweep spec, so every entry point rejects bad input with the same one-line message. Names of
metrics stay as given here (short forms such as `retention` included); they are resolved
against the table in analysis/inputs.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from analysis.confirm import Contrast, parse_confirm
from analysis.errors import AnalysisInputError
from analysis.families import FAMILIES
from trainables.keys import EPOCH_TEMPLATE, cka

SPEC_KEYS: tuple[str, ...] = ("families", "metrics", "alpha", "pareto", "confirm", "target", "signals",
                              "reference", "methods", "early_epochs", "damage_threshold", "margins")
DEFAULT_TARGET = "retention"  # the first zero-shot task's retention (trainables.keys.resolve)
DEFAULT_MARGINS = (1.0, 2.0, 3.0, 5.0)  # selection: candidates within m points of the best val accuracy
DEFAULT_DAMAGE = 50.0  # early warning: a run is damaged when its final retention is below this (%)

__all__ = ["AnalysisInputError", "AnalysisOptions", "Contrast", "FAMILIES", "SPEC_KEYS", "options_from_spec"]


@dataclass
class AnalysisOptions:
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    metrics: list[str] | None = None  # tested by paired / dose / association / unpaired (default: all)
    alpha: float = 0.05
    pareto: dict[str, str] | None = None
    confirm: list[Contrast] = field(default_factory=list)  # the confirmatory contrasts; the rest is exploratory
    target: str = DEFAULT_TARGET  # what predictors, early warning, selection and polarity explain
    signals: list[str] | None = None  # drift signals (default: every one the table has)
    reference: str = cka()  # predictors: the signal every other one is compared with
    methods: list[str] | None = None  # predictors / early warning / selection: arms or methods pooled
    early_epochs: list[int] | None = None  # default: every epoch with values
    damage_threshold: float = DEFAULT_DAMAGE
    margins: list[float] = field(default_factory=lambda: list(DEFAULT_MARGINS))
    columns: dict[str, str] | None = None  # a foreign table's column names -> driftlab's (CSV only)
    epoch_template: str = EPOCH_TEMPLATE  # per-epoch columns of a wide CSV (`{k}` = the epoch)


def items(value: str | Iterable | None) -> list[str] | None:
    """'a, b' or [a, b] -> ['a', 'b'] (blanks dropped); None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def parse_families(value: str | Iterable[str] | None, field_name: str = "families") -> list[str]:
    chosen = items(value)
    if not chosen:
        return list(FAMILIES)
    for item in chosen:
        if item not in FAMILIES:
            raise AnalysisInputError(f"{field_name}: unknown family {item!r}; accepted: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(chosen))  # de-duplicate, keep the user's order


def parse_metrics(value: str | Iterable[str] | None) -> list[str] | None:
    chosen = items(value)
    return list(dict.fromkeys(chosen)) if chosen else None


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def parse_alpha(value: Any, field_name: str = "alpha") -> float:
    alpha = _number(value)
    if not 0 < alpha < 1:
        raise AnalysisInputError(f"{field_name}: must be a number in (0, 1), got {value!r}")
    return alpha


def parse_pareto(value: str | dict | None, field_name: str = "pareto") -> dict[str, str] | None:
    """'metric:max,other:min' or {metric: 'max'|'min'} -> {metric: 'max'|'min'}."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        pairs = [item.rsplit(":", 1) if ":" in item else [item, ""] for item in items(value) or []]
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise AnalysisInputError(f"{field_name}: must map metric to 'max' or 'min', got {value!r}")
    for metric, sense in value.items():
        if sense not in ("max", "min"):
            raise AnalysisInputError(f"{field_name}: {metric!r} needs ':max' or ':min', got {sense!r}")
    if len(value) < 2:
        raise AnalysisInputError(f"{field_name}: needs at least two objectives, got {len(value)}")
    return dict(value)


def parse_epochs(value: Any, field_name: str = "early_epochs") -> list[int] | None:
    """'1,2' or [1, 2] -> [1, 2]: epochs >= 1 (epoch 0 is the pretrained model, drift 0 everywhere)."""
    chosen = items([value] if isinstance(value, int) else value)
    if not chosen:
        return None
    epochs = [int(v) if v.isdigit() else -1 for v in chosen]
    if min(epochs) < 1:
        raise AnalysisInputError(f"{field_name}: epochs are whole numbers >= 1, got {value!r}")
    return sorted(set(epochs))


def parse_margins(value: Any, field_name: str = "margins") -> list[float]:
    """'1,2,3,5' or [1, 2] -> points of validation accuracy below the best (each > 0)."""
    chosen = items([value] if isinstance(value, (int, float)) else value)
    if not chosen:
        return list(DEFAULT_MARGINS)
    margins = [_number(v) for v in chosen]
    if not all(m > 0 for m in margins):
        raise AnalysisInputError(f"{field_name}: margins are numbers of accuracy points > 0, got {value!r}")
    return sorted(set(margins))


def parse_threshold(value: Any, field_name: str = "damage_threshold") -> float:
    threshold = _number(value)
    if not 0 < threshold:
        raise AnalysisInputError(f"{field_name}: a retention in % (> 0) below which a run counts as damaged, "
                                 f"got {value!r}")
    return threshold


def parse_name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AnalysisInputError(f"{field_name}: must be one metric name, got {value!r}")
    return value.strip()


def options_from_spec(section: dict | None) -> AnalysisOptions:
    """Validate the `analysis:` dict of a sweep spec (keys: SPEC_KEYS)."""
    section = section or {}
    if not isinstance(section, dict):
        raise AnalysisInputError(f"analysis: must be a mapping with keys {', '.join(SPEC_KEYS)}")
    for key in section:
        if key not in SPEC_KEYS:
            raise AnalysisInputError(f"analysis.{key}: unknown key; accepted: {', '.join(SPEC_KEYS)}")
    opts = AnalysisOptions(
        families=parse_families(section.get("families"), "analysis.families"),
        metrics=parse_metrics(section.get("metrics")),
        alpha=parse_alpha(section.get("alpha", 0.05), "analysis.alpha"),
        pareto=parse_pareto(section.get("pareto"), "analysis.pareto"),
        confirm=parse_confirm(section.get("confirm"), "analysis.confirm"),
        signals=parse_metrics(section.get("signals")),
        methods=parse_metrics(section.get("methods")),
        early_epochs=parse_epochs(section.get("early_epochs"), "analysis.early_epochs"),
        margins=parse_margins(section.get("margins"), "analysis.margins"),
    )
    for key in ("target", "reference"):
        if key in section:
            setattr(opts, key, parse_name(section[key], f"analysis.{key}"))
    if "damage_threshold" in section:
        opts.damage_threshold = parse_threshold(section["damage_threshold"], "analysis.damage_threshold")
    return opts

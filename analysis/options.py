"""User-facing analysis options: families, metrics, alpha, Pareto objectives, and their errors.

The same parsers serve the CLI flags, keyword arguments and the `analysis:` section of a
sweep spec, so every entry point rejects bad input with the same one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

FAMILIES: tuple[str, ...] = ("paired", "dose", "association", "unpaired")
SPEC_KEYS: tuple[str, ...] = ("families", "metrics", "alpha", "pareto")


class AnalysisInputError(ValueError):
    """Bad user input: the message is one line naming the field and what is accepted."""


@dataclass
class AnalysisOptions:
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    metrics: list[str] | None = None
    alpha: float = 0.05
    pareto: dict[str, str] | None = None


def _items(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def parse_families(value: str | Iterable[str] | None, field_name: str = "families") -> list[str]:
    items = _items(value)
    if not items:
        return list(FAMILIES)
    for item in items:
        if item not in FAMILIES:
            raise AnalysisInputError(f"{field_name}: unknown family {item!r}; accepted: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(items))  # de-duplicate, keep the user's order


def parse_metrics(value: str | Iterable[str] | None) -> list[str] | None:
    items = _items(value)
    return list(dict.fromkeys(items)) if items else None


def parse_alpha(value: Any, field_name: str = "alpha") -> float:
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        alpha = float("nan")
    if not 0 < alpha < 1:
        raise AnalysisInputError(f"{field_name}: must be a number in (0, 1), got {value!r}")
    return alpha


def parse_pareto(value: str | dict | None, field_name: str = "pareto") -> dict[str, str] | None:
    """'metric:max,other:min' or {metric: 'max'|'min'} -> {metric: 'max'|'min'}."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        pairs = [item.rsplit(":", 1) if ":" in item else [item, ""] for item in _items(value) or []]
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise AnalysisInputError(f"{field_name}: must map metric to 'max' or 'min', got {value!r}")
    for metric, sense in value.items():
        if sense not in ("max", "min"):
            raise AnalysisInputError(f"{field_name}: {metric!r} needs ':max' or ':min', got {sense!r}")
    if len(value) < 2:
        raise AnalysisInputError(f"{field_name}: needs at least two objectives, got {len(value)}")
    return dict(value)


def options_from_spec(section: dict | None) -> AnalysisOptions:
    """Validate the `analysis:` dict of a sweep spec (keys: families, metrics, alpha, pareto)."""
    section = section or {}
    if not isinstance(section, dict):
        raise AnalysisInputError(f"analysis: must be a mapping with keys {', '.join(SPEC_KEYS)}")
    for key in section:
        if key not in SPEC_KEYS:
            raise AnalysisInputError(f"analysis.{key}: unknown key; accepted: {', '.join(SPEC_KEYS)}")
    return AnalysisOptions(
        families=parse_families(section.get("families"), "analysis.families"),
        metrics=parse_metrics(section.get("metrics")),
        alpha=parse_alpha(section.get("alpha", 0.05), "analysis.alpha"),
        pareto=parse_pareto(section.get("pareto"), "analysis.pareto"),
    )

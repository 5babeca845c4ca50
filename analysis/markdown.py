"""Markdown helpers shared by the report and the families' own sections."""

from __future__ import annotations

import math

import pandas as pd


def num(value: object, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def cell(text: object) -> str:
    """A table cell's text with its pipes escaped (a signal such as |Δentropy| would split the row)."""
    return str(text).replace("|", "\\|")


def capital(text: str) -> str:
    """Capitalise a sentence that opens with a plain word; one opening with a key (repr/cka/mean) stays."""
    first = text.split(" ", 1)[0]
    return text[:1].upper() + text[1:] if first.isalpha() else text


def where(strata: str) -> str:
    """'In model=b32, ' before a sentence about one stratum; nothing when the table has only one."""
    return "" if strata in ("", "all") else f"In {strata}, "


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub markdown table (pandas' to_markdown needs tabulate, which is not a dependency)."""
    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(num(v, digits)) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])

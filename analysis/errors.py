"""The analysis' one error type: bad user input, reported as one line and exit code 2."""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """Bad user input: the message is one line naming the field and what is accepted."""

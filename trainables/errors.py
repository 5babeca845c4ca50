"""Bad user input: `ConfigError` and the two checks every config field uses.

A leaf module (no trainables imports) so the config, the data registry, the models and the
methods can all raise the same error without importing each other.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input: the message is one line naming the field and what is accepted."""


def require(key: str, ok: bool, accepted: str) -> None:
    """ConfigError `<key>: must be <accepted>` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}: must be {accepted}")


def one_of(key: str, values, accepted) -> None:
    """ConfigError unless the value (or every item of a list value) is one of `accepted`."""
    for value in values if isinstance(values, list) else [values]:
        if value not in accepted:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(accepted)}")

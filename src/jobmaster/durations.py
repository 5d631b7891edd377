"""Durations as users write them: a number of seconds, a `timedelta`, or `250ms`, `15s`, `10m`, `2h`."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as `250ms`, `15s`, `10m`, `2h`, `30d`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 15s or 10m, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"expected a duration such as 15s or 10m, got {value!r}")


def duration_within(value: Any, longest: float, longest_text: str, what: str) -> float:
    """Seconds of `value`, which must lie between 0 and `longest`; a ValueError naming `what`
    otherwise (callers raise it again as their own kind of error)."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if not 0 <= seconds <= longest:
        raise ValueError(f"{what} must be between 0 and {longest_text}, got {value!r}")
    return seconds

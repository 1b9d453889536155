"""Durations as people write them on a shop floor: `90`, `90s`, `5min`, `8h`, `1.5d`.

A bare number is seconds. Everything inside the twin is seconds as float.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "m": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PATTERN = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]+)?\s*$")


def parse_duration(value: object, *, signed: bool = False) -> float:
    """Return `value` in seconds; raise ValueError with a readable message otherwise.

    Negative durations are refused unless `signed` (then the caller checks the bounds).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond any float
            seconds = float("inf")
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 90s, 5min, 8h)")
        number, unit = match.groups()
        if unit is None:
            factor = 1.0
        elif unit in _UNIT_SECONDS:
            factor = _UNIT_SECONDS[unit]
        else:
            allowed = ", ".join(_UNIT_SECONDS)
            raise ValueError(f"unknown time unit {unit!r} in {value!r} (allowed: {allowed})")
        seconds = float(number) * factor
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite duration: {value!r}")
    if seconds < 0 and not signed:
        raise ValueError(f"must be >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form, e.g. 3600 -> '1h', 90 -> '1.5min'."""
    for unit, factor in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= factor:
            return f"{seconds / factor:g}{unit}"
    return f"{seconds:g}s"

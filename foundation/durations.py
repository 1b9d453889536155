"""Durations and sizes as people write them: `90`, `100ms`, `5min`, `1w`; `64MB`, `1GiB`.

A bare number is seconds (or bytes). Every duration in the project is seconds as float,
parsed here, so a unit accepted in a line file is accepted in a connector file too.

    >>> parse_duration("1.5h"), parse_size("64MiB")
    (5400.0, 67108864)
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

UNIT_SECONDS = {
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
_DURATION = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]+)?\s*$")
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


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
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 100ms, 90s, 5min, 8h)")
        number, unit = match.groups()
        if unit is None:
            factor = 1.0
        elif unit in UNIT_SECONDS:
            factor = UNIT_SECONDS[unit]
        else:
            allowed = ", ".join(UNIT_SECONDS)
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


def parse_size(value: object) -> int:
    """Bytes from `1048576`, `64MB` (10^6) or `64MiB` (2^20)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"not a size: {value!r} (use bytes or e.g. 64MB, 1GiB)")
        unit = (match.group(2) or "").lower()
        binary = "i" in unit
        prefix = unit[:1] if unit not in ("b", "") else ""
        factor = 1024 ** ("kmgt".index(prefix) + 1) if binary else _SIZE_UNITS[prefix]
        number = float(match.group(1)) * factor
        if number == float("inf"):
            raise ValueError(f"too large a size: {value[:40]!r}")
        size = int(number)
    else:
        raise ValueError(f"expected a size, got {type(value).__name__}")
    if size < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return size


def _signed_duration(value: Any) -> float:
    return parse_duration(value, signed=True)


# parsed signed, so that a negative value is refused by the bound and named as a number
Duration = Annotated[float, BeforeValidator(_signed_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(_signed_duration), Field(gt=0)]
Size = Annotated[int, BeforeValidator(parse_size)]

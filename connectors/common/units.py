"""Durations and sizes as people write them in a config: `100ms`, `5s`, `2min`; `64MB`, `1GiB`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_duration(value: object) -> float:
    """Seconds from `0.5`, `100ms`, `5s`, `2min`, `1h`; ValueError with a readable message otherwise."""
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
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 100ms, 5s, 2min)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"must be a finite duration >= 0, got {value!r}")
    return seconds


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


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]

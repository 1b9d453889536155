"""A point: one measurement, its tags, its fields and a UTC timestamp in nanoseconds.

Points travel as InfluxDB line protocol from the sources to the spool and on to every sink,
so the text written to the spool is exactly what an InfluxDB server receives.

    >>> to_line(Point("sensor", {"station": "S1"}, {"value": 1.5}, 1_700_000_000_000_000_000))
    'sensor,station=S1 value=1.5 1700000000000000000'

Two points with the same measurement, tag set and timestamp are the same point: writing one
twice overwrites it, which is what makes at-least-once delivery free of duplicates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

FieldValue = float | int | bool | str

# Timestamps outside this window are treated as bad input, not data (1990 .. now + 400 days).
EARLIEST_NS = 631_152_000 * 10**9
FUTURE_NS = 400 * 86_400 * 10**9


class BadPoint(ValueError):
    """Input that cannot become a point (wrong type, absurd timestamp, no fields)."""


@dataclass(slots=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int


def now_ns() -> int:
    return time.time_ns()


def check_time(time_ns: int, now: int | None = None) -> int:
    """`time_ns` if it is a plausible UTC time, else BadPoint."""
    limit = (now if now is not None else time.time_ns()) + FUTURE_NS
    if not EARLIEST_NS <= time_ns <= limit:
        raise BadPoint(f"absurd timestamp {time_ns} ns")
    return time_ns


def timestamp_ns(value: object) -> int:
    """Nanoseconds since the epoch from an ISO-8601 string, a datetime, or epoch s/ms/us/ns.

    Epoch numbers are told apart by magnitude; floats go through their shortest decimal form
    so that `1700000000.123456` becomes exactly 1700000000123456000.
    """
    if isinstance(value, bool):
        raise BadPoint(f"not a timestamp: {value!r}")
    if isinstance(value, datetime):
        return datetime_ns(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except ArithmeticError:
            number = None
        if number is None or not number.is_finite():
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise BadPoint(f"not a timestamp: {value!r}") from None
            return datetime_ns(parsed, fraction=_fraction_digits(text))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadPoint(f"not a timestamp: {value!r}")
        text = repr(value)
        if 0 < value < 1e11 and "e" not in text:  # epoch seconds, the common case: exact and fast
            whole, _, fraction = text.partition(".")
            return int(whole) * 10**9 + int(fraction[:9].ljust(9, "0"))
        number = Decimal(text)
    else:
        raise BadPoint(f"not a timestamp: {value!r}")
    magnitude = abs(number)
    if magnitude < Decimal(10) ** 11:
        scale = 10**9
    elif magnitude < Decimal(10) ** 14:
        scale = 10**6
    elif magnitude < Decimal(10) ** 17:
        scale = 10**3
    else:
        scale = 1
    return int((number * scale).to_integral_value())


def _fraction_digits(text: str) -> str | None:
    """Digits after the seconds' decimal point in an ISO string (for sub-microsecond precision)."""
    tail = text.split("T", 1)[-1].split(" ", 1)[-1]
    if "." not in tail:
        return None
    digits = ""
    for char in tail.split(".", 1)[1]:
        if not char.isdigit():
            break
        digits += char
    return digits or None


def datetime_ns(value: datetime, fraction: str | None = None) -> int:
    """A datetime (naive means UTC) as epoch nanoseconds, exact to the microsecond or `fraction`."""
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    whole = value.replace(microsecond=0)
    seconds = int(whole.timestamp())
    if fraction is not None:
        return seconds * 10**9 + int(fraction[:9].ljust(9, "0"))
    return seconds * 10**9 + value.microsecond * 1000


def field_value(value: object) -> FieldValue:
    """A JSON/OPC UA scalar as a field value; BadPoint for anything that is not one."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadPoint(f"non-finite value {value!r}")
        return value
    raise BadPoint(f"not a scalar value: {type(value).__name__}")


# Neither may stand unquoted in line protocol: \n ends a line, and readers that accept \r\n line
# ends (or split with str.splitlines) take \r for one too.
LINE_BREAKS = ("\n", "\r")


def flat_tag(value: str) -> str:
    r"""A tag value as line protocol carries it: each line break (\n or \r) becomes a space.

    Tags come from topics and payloads, where a stray line break is noise, not meaning: the
    point is kept rather than refused. Every sink reads this same text, the embedded historian
    included, so the tag reads back the same everywhere: `flat_tag("factory/\r") == "factory/ "`.
    """
    for char in LINE_BREAKS:
        value = value.replace(char, " ")
    return value


def flat_string(value: str) -> str:
    r"""A string field value as line protocol carries it: \n becomes a space, \r stays.

    Inside the quotes only \n would end the line (the embedded historian splits on \n alone, as
    InfluxDB does), so a \r there belongs to the value.
    """
    return value.replace("\n", " ")


def _escape_key(text: str) -> str:
    """A tag key, tag value or field key escaped for line protocol; BadPoint if it cannot be one
    (empty, a line break, or a trailing backslash that would escape the separator after it)."""
    if (
        text
        and "," not in text
        and "=" not in text
        and " " not in text
        and "\\" not in text
        and "\n" not in text
        and "\r" not in text
    ):
        return text
    _usable(text)
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_measurement(text: str) -> str:
    _usable(text)
    return text.replace(",", "\\,").replace(" ", "\\ ")


def _usable(text: str) -> None:
    if not text or text.endswith("\\") or any(char in text for char in LINE_BREAKS):
        raise BadPoint(f"not usable as a name in line protocol: {text[:40]!r}")


def _format_field(value: FieldValue) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    text = flat_string(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


_HEADS: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def _head(measurement: str, tags: dict[str, str]) -> str:
    """`measurement,tag=value,...` (sorted, escaped), cached: the same series recur all day."""
    key = (measurement, tuple(sorted(tags.items())))
    head = _HEADS.get(key)
    if head is None:
        head = _escape_measurement(measurement)
        for name, value in key[1]:
            if value:
                head += f",{_escape_key(name)}={_escape_key(flat_tag(value))}"
        if len(_HEADS) > 100_000:
            _HEADS.clear()
        _HEADS[key] = head
    return head


def to_line(point: Point) -> str:
    """The point in line protocol (tags sorted, empty tag values left out)."""
    if not point.fields:
        raise BadPoint("a point needs at least one field")
    fields = ",".join(f"{_escape_key(key)}={_format_field(value)}" for key, value in point.fields.items())
    return f"{_head(point.measurement, point.tags)} {fields} {point.time_ns}"


def encode(points: list[Point]) -> bytes:
    return "".join(to_line(point) + "\n" for point in points).encode()


def series_key(point: Point) -> str:
    """Measurement and sorted tags: what InfluxDB calls the series."""
    return ",".join([point.measurement, *(f"{key}={point.tags[key]}" for key in sorted(point.tags))])


def _read(line: str, index: int, separators: str) -> tuple[str, int]:
    """Read from `index` up to the first unescaped separator; return the unescaped token and its end."""
    out: list[str] = []
    length = len(line)
    while index < length:
        char = line[index]
        if char == "\\" and index + 1 < length and line[index + 1] in ", =":
            out.append(line[index + 1])
            index += 2
            continue
        if char in separators:
            break
        out.append(char)
        index += 1
    return "".join(out), index


def _read_string(line: str, index: int) -> tuple[str, int]:
    """A quoted field value starting at `index` (the opening quote); return it and the index after it."""
    out: list[str] = []
    index += 1
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line) and line[index + 1] in '"\\':
            out.append(line[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        out.append(char)
        index += 1
    raise ValueError("unterminated string field")


def _parse_field(text: str) -> FieldValue:
    if text in ("true", "t", "T", "True", "TRUE"):
        return True
    if text in ("false", "f", "F", "False", "FALSE"):
        return False
    if text.endswith(("i", "u")):
        return int(text[:-1])
    return float(text)


def parse_line(line: str) -> Point:
    """The inverse of `to_line` (for the embedded historian, which stores points, not text)."""
    measurement, index = _read(line, 0, ", ")
    tags: dict[str, str] = {}
    while index < len(line) and line[index] == ",":
        key, index = _read(line, index + 1, "=")
        value, index = _read(line, index + 1, ", ")
        tags[key] = value
    index += 1
    fields: dict[str, FieldValue] = {}
    while index < len(line):
        key, index = _read(line, index, "=")
        index += 1
        if index < len(line) and line[index] == '"':
            fields[key], index = _read_string(line, index)
        else:
            raw, index = _read(line, index, ", ")
            fields[key] = _parse_field(raw)
        if index < len(line) and line[index] == ",":
            index += 1
            continue
        break
    if not fields:
        raise ValueError("no fields")
    stamp = line[index + 1 :].strip()
    return Point(measurement, tags, fields, int(stamp) if stamp else time.time_ns())

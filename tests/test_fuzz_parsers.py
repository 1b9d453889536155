"""Property-based checks of the twin's parsers: whatever comes in, the answer is a value or one
clear line naming the field, never another exception.

The default suite runs a few hundred examples per parser; `FUZZ_EXAMPLES=10000` runs more
(`FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/test_fuzz_parsers.py`).
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from foundation.durations import parse_duration
from twin.line import LineError, line_from_dict

from .fuzzing import FUZZ, LONG_RUN

pytestmark = LONG_RUN

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["90s", "5min", "8h", "-3", "1e999", "exponential", "saturated", "0", "nan"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["dist", "mean", "cv", "sd", "low", "high", "mode", "value", "samples", "A", "x"]
            ),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
STATION_KEYS = [
    "name",
    "cycle_time",
    "capacity",
    "buffer",
    "failures",
    "setup",
    "scrap",
    "ideal_cycle_time",
    "x",
]
LINE_KEYS = ["name", "release", "products", "horizon", "warmup", "seed", "engine", "stations", "x"]


@FUZZ
@given(st.one_of(scalars, st.text(max_size=20), st.integers()))
@example(10**400)  # float() overflowed
def test_durations_parse_or_refuse(text: Any) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert seconds >= 0 and seconds == seconds and seconds != float("inf")


@FUZZ
@given(
    st.dictionaries(st.sampled_from(STATION_KEYS), values, max_size=5),
    st.dictionaries(st.sampled_from(LINE_KEYS), values, max_size=3),
)
def test_lines_validate_or_name_the_field(station: dict[str, Any], line: dict[str, Any]) -> None:
    data = {"name": "fuzz", "stations": [{"name": "a", "cycle_time": 5, **station}], **line}
    try:
        line_from_dict(data, "fuzz.yaml")
    except LineError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml: ") and "\n" not in message

"""Points, line protocol, timestamps, the spool and the Sparkplug B decoder, without servers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.common.points import BadPoint, Point, encode, parse_line, timestamp_ns, to_line
from connectors.common.secrets import EnvError, hide_in_logs, substitute
from connectors.common.spool import Spool
from connectors.mqtt import sparkplug as spb
from foundation.durations import parse_duration, parse_size

text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"), min_size=1, max_size=12
)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(
    measurement=text,
    tags=st.dictionaries(text, text, max_size=4),
    fields=st.dictionaries(text, values, min_size=1, max_size=4),
    stamp=st.integers(0, 2**62),
)
def test_line_protocol_round_trip(measurement, tags, fields, stamp):
    point = Point(measurement, tags, fields, stamp)
    back = parse_line(to_line(point))
    assert back.measurement == measurement
    assert back.tags == tags
    assert back.fields == fields
    assert back.time_ns == stamp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1700000000, 1700000000 * 10**9),
        (1700000000.123456, 1700000000123456000),
        (1700000000123, 1700000000123 * 10**6),
        (1700000000123456789, 1700000000123456789),
        ("2023-11-14T22:13:20.123456789Z", 1700000000123456789),
        ("2023-11-14T22:13:20+00:00", 1700000000 * 10**9),
        ("1700000000.5", 1700000000500000000),
    ],
)
def test_timestamps(value, expected):
    assert timestamp_ns(value) == expected


@pytest.mark.parametrize("value", ["yesterday", True, None, float("nan")])
def test_bad_timestamps(value):
    with pytest.raises(BadPoint):
        timestamp_ns(value)


def test_units():
    assert parse_duration("100ms") == pytest.approx(0.1)
    assert parse_duration("2min") == 120
    assert parse_size("1GB") == 10**9
    assert parse_size("64MiB") == 64 << 20
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_env_substitution_names_the_field():
    assert substitute({"a": "x${A}y", "b": ["${B:-dflt}"]}, {"A": "1"}) == {"a": "x1y", "b": ["dflt"]}
    assert substitute({"a": "$${A}"}, {}) == {"a": "${A}"}
    with pytest.raises(EnvError) as info:
        substitute({"sink": {"token": "${MISSING_TOKEN}"}}, {})
    assert info.value.path == "sink.token"


def test_secrets_are_redacted_from_logs(caplog):
    secrets: set[str] = set()
    substitute({"password": "${PW}"}, {"PW": "hunter2-secret"}, secrets)
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        hide_in_logs(secrets)
        record = logging.LogRecord(
            "x", logging.WARNING, __file__, 1, "login with %s", ("hunter2-secret",), None
        )
        for handler_filter in handler.filters:
            handler_filter.filter(record)
        assert "hunter2-secret" not in record.getMessage()
        assert "***" in record.getMessage()
    finally:
        root.removeHandler(handler)


def _lines(count: int, start: int = 0) -> bytes:
    return encode(
        [Point("m", {"k": "v"}, {"i": index}, 10**18 + index) for index in range(start, start + count)]
    )


def test_spool_append_read_commit_and_reopen(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    spool.append(_lines(100), 100)
    spool.append(_lines(100, 100), 100)
    data, count, position = spool.read(150)
    assert count == 150
    assert [parse_line(line).fields["i"] for line in data.decode().splitlines()] == list(range(150))
    spool.commit(position, count)
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    assert again.pending == 50
    data, count, _ = again.read(1000)
    assert [parse_line(line).fields["i"] for line in data.decode().splitlines()] == list(range(150, 200))


def test_spool_cuts_a_torn_last_line(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append(_lines(3), 3)
    spool.close()
    segment = sorted((tmp_path / "segments").iterdir())[-1]
    with open(segment, "ab") as handle:
        handle.write(b"m,k=v i=99i 10000")  # a kill -9 in the middle of a write
    again = Spool(tmp_path)
    data, count, _ = again.read(10)
    assert count == 3
    assert data.endswith(b"\n")


def test_spool_full_drops_oldest_and_counts(tmp_path: Path, caplog):
    spool = Spool(tmp_path, max_bytes=1 << 16, segment_bytes=8192)
    with caplog.at_level(logging.WARNING):
        for start in range(0, 5000, 100):
            spool.append(_lines(100, start), 100)
    assert spool.size_bytes <= 1 << 16
    assert spool.dropped > 0
    assert spool.pending + spool.dropped == 5000
    assert "spool full" in caplog.text
    data, _, _ = spool.read(10**6)
    indices = [parse_line(line).fields["i"] for line in data.decode().splitlines()]
    assert indices == list(range(5000 - len(indices), 5000))  # the newest are kept, in order


def test_sparkplug_aliases_and_sequence_gap():
    host = spb.SparkplugHost()
    birth = spb.Payload(seq=0, timestamp=1_700_000_000_000)
    birth.metrics.add(name="bdSeq", datatype=spb.INT64, long_value=1)
    birth.metrics.add(name="Temperature", alias=1, datatype=spb.DOUBLE, double_value=20.5)
    birth.metrics.add(name="Offset", alias=2, datatype=spb.INT32, int_value=(1 << 32) - 3)
    decoded = host.decode("spBv1.0/plant/NBIRTH/edge1", birth.SerializeToString())
    assert decoded is not None
    assert decoded.values == [("Temperature", 20.5, None), ("Offset", -3, None)]
    data = spb.Payload(seq=1, timestamp=1_700_000_001_000)
    data.metrics.add(alias=1, timestamp=1_700_000_001_000, double_value=21.0)
    decoded = host.decode("spBv1.0/plant/NDATA/edge1", data.SerializeToString())
    assert decoded.values == [("Temperature", 21.0, 1_700_000_001_000)] and decoded.rebirth is None
    gap = spb.Payload(seq=7)
    gap.metrics.add(alias=1, double_value=22.0)
    decoded = host.decode("spBv1.0/plant/NDATA/edge1", gap.SerializeToString())
    assert decoded.rebirth and "sequence gap" in decoded.rebirth
    request = spb.Payload.FromString(spb.rebirth_request())
    assert request.metrics[0].name == "Node Control/Rebirth" and request.metrics[0].boolean_value


def test_no_test_leaves_spool_files_in_the_repository():
    assert not os.path.exists(Path(__file__).resolve().parents[2] / "spool")


@pytest.mark.parametrize("name", ["", "a\nb", "a\rb", "trailing\\"])
def test_names_line_protocol_cannot_carry_are_refused(name: str) -> None:
    from connectors.common.points import BadPoint, Point, to_line

    for point in (
        Point("m", {"tag": "v"}, {name: 1.0}, 1),
        Point("m", {name: "v"}, {"value": 1.0}, 1),
        Point(name, {"tag": "v"}, {"value": 1.0}, 1),
    ):
        with pytest.raises(BadPoint):
            to_line(point)


def test_a_string_value_with_carriage_returns_is_one_point_in_the_historian(tmp_path) -> None:
    from connectors.common.points import Point, to_line
    from connectors.sinks.embedded import Historian

    historian = Historian(tmp_path / "h.duckdb")
    line = to_line(Point("m", {"station": "s"}, {"note": "a\rb\u2028c"}, 1_000))
    assert historian.insert_lines((line + "\n").encode()) == 0
    assert historian.query("m")["note"].tolist() == ["a\rb\u2028c"]


def test_line_breaks_in_a_tag_become_spaces_and_a_string_keeps_its_carriage_returns(tmp_path: Path) -> None:
    r"""`\r` in a tag (a topic level `factory/\r`, say): line protocol cannot carry it, the point
    keeps the tag with a space; in a quoted string field only `\n` is replaced."""
    from connectors.common.points import Point, flat_string, flat_tag, parse_line, to_line
    from connectors.sinks.embedded import Historian

    assert flat_tag("factory/\r") == "factory/ "
    assert flat_tag("a\r\nb") == "a  b"
    assert flat_string("a\r\nb") == "a\r b"
    line = to_line(Point("sensor", {"line": "\r", "station": "a\nb"}, {"note": "x\r\ny"}, 1_000))
    assert line == 'sensor,line=\\ ,station=a\\ b note="x\r y" 1000'
    back = parse_line(line)
    assert back.tags == {"line": " ", "station": "a b"} and back.fields == {"note": "x\r y"}
    historian = Historian(tmp_path / "h.duckdb")
    assert historian.insert_lines((line + "\n").encode()) == 0
    stored = historian.query("sensor")
    assert stored[["line", "station", "note"]].values.tolist() == [[" ", "a b", "x\r y"]]
    historian.close()

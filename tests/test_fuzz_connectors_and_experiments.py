"""Property-based checks of the connectors' and experiments' parsers: MQTT payloads (JSON, plain
numbers, Sparkplug B), connector config files and experiment files.

Whatever comes in, a payload gives well-formed points (finite values, a plausible time, a line
of line protocol that reads back the same) or a rejection the MQTT source counts (a ValueError
with a one-line reason); a file gives a config or one line `file: field: message`, which the
command line prints with exit code 2. Nothing else escapes.

Examples per property come from `FUZZ_EXAMPLES` (see `tests/fuzzing.py`).
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from typer.testing import CliRunner

from connectors.common.points import (
    EARLIEST_NS,
    FUTURE_NS,
    Point,
    encode,
    flat_string,
    flat_tag,
    parse_line,
    to_line,
)
from connectors.config import ConfigError, config_from_dict, read_config
from connectors.mqtt.config import MqttSource, Topic
from connectors.mqtt.formats import json_points, number_points
from connectors.mqtt.source import MqttSourceRunner
from connectors.mqtt.sparkplug import Payload
from fabbrica.cli import app
from fabbrica.connect_commands import config_message
from foundation.errors import InputError
from twin.experiments import Experiment
from twin.experiments.spec import FullFactorial, LatinHypercube, Range, Scenarios, spec_from_dict

from .conftest import ROOT
from .fuzzing import FUZZ, LONG_RUN, few, fuzz

pytestmark = LONG_RUN

NOW_NS = time.time_ns()
NOW_S = NOW_NS // 10**9
INT64 = (-(2**63), 2**63 - 1)
ENV = {"MQTT_PASSWORD": "s3cret", "EMPTY": ""}
cli = CliRunner()
_files = count()


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as name:
        yield Path(name)


# -- what a well-formed point is ------------------------------------------------------------------


def outcome(text: str) -> None:
    """Counted in `--hypothesis-show-statistics`: how many inputs were taken, how many refused."""
    if currently_in_test_context():
        event(text)


def assert_well_formed(points: list[Point]) -> None:
    """Finite scalar fields, string tags, a plausible time, and one line that reads back the same."""
    outcome(f"{min(len(points), 2)}+ points" if len(points) > 1 else f"{len(points)} point(s)")
    for point in points:
        assert point.measurement and point.fields
        assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in point.tags.items())
        for key, value in point.fields.items():
            assert isinstance(key, str) and key
            assert type(value) in (float, int, bool, str), value
            if isinstance(value, float):
                assert math.isfinite(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                assert INT64[0] <= value <= INT64[1]
        assert type(point.time_ns) is int
        assert EARLIEST_NS <= point.time_ns <= time.time_ns() + FUTURE_NS
        line = to_line(point)
        assert "\n" not in line
        encode([point])  # UTF-8, as the spool writes it
        back = parse_line(line)
        assert back.measurement == point.measurement
        # line breaks in a tag become spaces; in a string field only \n does (test_units pins both)
        assert back.tags == {k: flat_tag(v) for k, v in point.tags.items() if v}
        assert back.fields == {
            k: flat_string(v) if isinstance(v, str) else v for k, v in point.fields.items()
        }
        assert back.time_ns == point.time_ns


def assert_counted(exc: Exception) -> None:
    """A rejection the MQTT source counts with a readable reason: a ValueError, one line."""
    assert isinstance(exc, ValueError), repr(exc)
    assert "\n" not in str(exc) and str(exc)
    outcome(f"rejected: {str(exc).split(':')[0].split(' ')[0]}")


# -- MQTT: JSON and plain numbers ----------------------------------------------------------------

NASTY_TEXT = [
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1e999",
    "1e99999",
    "1e999999999",
    "-1e999999999",
    "2024-13-01T00:00:00Z",
    "2024-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    str(NOW_S),
    str(NOW_NS // 10**6),
    str(NOW_NS),
    "C\\",
    "a\nb",
    "a\ud800",
    "",
    " ",
    '"',
    "a,b=c d",
]
KEYS = ["ts", "value", "unit", "product", "cycle_time_s", "", "a\\", "x\ny", "\ud800", "a,b", "é", "ts "]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([NOW_S, NOW_NS // 10**6, NOW_NS, 2**63, 2**64 - 1, -(2**63) - 1, 10**309]),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(NASTY_TEXT),
)
json_docs = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=20,
)
record = st.fixed_dictionaries(
    {"ts": st.one_of(st.just(NOW_S + 0.5), json_scalars), "value": json_scalars},
    optional={"unit": json_scalars, "product": json_scalars, "extra": json_docs},
)


def _dumps(document: Any) -> bytes:
    return json.dumps(document).encode()


@st.composite
def corrupted(draw: st.DrawFn, payloads: st.SearchStrategy[bytes]) -> bytes:
    """A payload with bytes flipped, cut off or inserted."""
    data = bytearray(draw(payloads))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "cut", "insert"]))
        if operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "cut":
            data = data[:position]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


deep = st.integers(1, 5000).flatmap(
    lambda n: st.sampled_from(
        [
            b"[" * n + b"]" * n,
            b'{"a":' * n + b"1" + b"}" * n,
            b'{"value": 1, "unit": ' + b"[" * n + b"]" * n + b"}",
        ]
    )
)
json_payloads = st.one_of(
    st.binary(max_size=64),
    json_docs.map(_dumps),
    record.map(_dumps),
    st.lists(record, max_size=4).map(_dumps),
    corrupted(record.map(_dumps)),
    deep,
)
JSON_TOPICS = [
    Topic(filter="factory/+/+/+"),
    Topic(filter="factory/+/+/+", integers="keep", tag_keys=["unit", "product", "a b"], value_key="v"),
    Topic(filter="factory/#", timestamp_key="", events_level=None, topic_tags="_/line/station/+/#"),
]
TOPIC_NAMES = [
    "factory/L1/Press/energy",
    "factory/L1/Press/events",
    "factory/L1\\/Press/x\\",
    "factory///",
    "factory/a b,c=d/x y/z",
    "factory/L1/Press/energy/extra/levels",
]
topic_names = st.one_of(st.sampled_from(TOPIC_NAMES), st.text(max_size=20).map(lambda s: f"factory/{s}"))


@FUZZ
@given(st.sampled_from(JSON_TOPICS), topic_names, json_payloads)
@example(JSON_TOPICS[0], TOPIC_NAMES[0], b'{"value": 1' + b"0" * 400 + b"}")  # float() overflow
@example(JSON_TOPICS[1], TOPIC_NAMES[0], b'{"v": 100000000000000000000}')  # beyond int64
@example(JSON_TOPICS[0], TOPIC_NAMES[0], b'{"ts": "1e999999999", "value": 1}')  # decimal.Overflow
@example(JSON_TOPICS[0], TOPIC_NAMES[0], b'{"ts": "1e99999", "value": 1}')  # a 100,000-digit int
@example(JSON_TOPICS[0], TOPIC_NAMES[0], b"[" * 5000)  # RecursionError
@example(JSON_TOPICS[2], TOPIC_NAMES[0], b'{"": 1}')  # empty field name
@example(JSON_TOPICS[2], TOPIC_NAMES[0], b'{"a\\\\": 1}')  # trailing backslash escapes the '='
@example(JSON_TOPICS[2], TOPIC_NAMES[0], b'{"a\\nb": 1}')  # a line break splits the line
@example(JSON_TOPICS[0], TOPIC_NAMES[0], b'{"value": 1, "unit": "C\\\\"}')  # tag value
@example(JSON_TOPICS[0], TOPIC_NAMES[2], b'{"value": 1}')  # topic level as tag value
@example(JSON_TOPICS[0], TOPIC_NAMES[0], b'{"value": "a\\ud800"}')  # lone surrogate: no UTF-8
def test_json_payloads_give_points_or_a_counted_rejection(topic: Topic, name: str, payload: bytes) -> None:
    try:
        points = json_points(topic, name, payload, NOW_NS)
    except Exception as exc:
        assert_counted(exc)
    else:
        assert_well_formed(points)


number_payloads = st.one_of(
    st.binary(max_size=24),
    st.floats().map(lambda x: repr(x).encode()),
    st.integers(min_value=-(10**400), max_value=10**400).map(lambda n: str(n).encode()),
    st.sampled_from([b"1_000", b" 5 ", b"nan", b"-inf", b"1e999", b"0x10", "١٢٣".encode(), b"\xff1"]),
)


@FUZZ
@given(st.sampled_from(JSON_TOPICS), topic_names, number_payloads)
@example(JSON_TOPICS[0], TOPIC_NAMES[2], b"1")  # topic level ending in a backslash
@example(JSON_TOPICS[0], "factory/\r", b"1")  # \r in a tag value reads back as a space (seen in CI)
def test_number_payloads_give_a_point_or_a_counted_rejection(topic: Topic, name: str, payload: bytes) -> None:
    try:
        points = number_points(topic, name, payload, NOW_NS)
    except Exception as exc:
        assert_counted(exc)
    else:
        assert len(points) == 1
        assert_well_formed(points)


# -- MQTT: Sparkplug B ---------------------------------------------------------------------------

UINT64 = st.integers(0, 2**64 - 1)
METRIC_NAMES = ["temp", "count", "bdSeq", "Node Control/Rebirth", "Properties/x", "", "a\\", "a\nb", "é"]
VALUES = {
    "int_value": st.integers(0, 2**32 - 1),
    "long_value": UINT64,
    "float_value": st.floats(width=32),
    "double_value": st.floats(),
    "boolean_value": st.booleans(),
    "string_value": st.text(max_size=8),
    "bytes_value": st.binary(max_size=8),
}
SPARKPLUG_KINDS = ["NBIRTH", "DBIRTH", "NDATA", "DDATA", "NDEATH", "DDEATH", "NCMD", "DCMD", "STATE", "XDATA"]
GROUPS = ["G1", "G\\", "a b", "", "é"]


@st.composite
def sparkplug_payloads(draw: st.DrawFn) -> bytes:
    payload = Payload()
    now_ms = NOW_NS // 10**6
    if draw(st.booleans()):
        payload.timestamp = draw(st.one_of(st.just(now_ms), st.just(now_ms), st.sampled_from([0, 1]), UINT64))
    if draw(st.booleans()):
        payload.seq = draw(st.one_of(st.integers(0, 5), st.integers(0, 260), UINT64))
    for _ in range(draw(st.integers(0, 5))):
        metric = payload.metrics.add()
        if draw(st.integers(0, 3)):
            metric.name = draw(
                st.one_of(
                    st.sampled_from(METRIC_NAMES[:3]), st.sampled_from(METRIC_NAMES), st.text(max_size=8)
                )
            )
        if draw(st.booleans()):
            metric.alias = draw(st.one_of(st.integers(0, 5), UINT64))
        if draw(st.booleans()):
            metric.timestamp = draw(st.one_of(st.just(now_ms), st.just(now_ms), UINT64))
        if draw(st.booleans()):
            metric.datatype = draw(st.one_of(st.integers(0, 14), st.integers(0, 2**32 - 1)))
        if draw(st.integers(0, 9)) == 0:
            metric.is_null = True
        kind = draw(st.sampled_from([None, *VALUES, "double_value", "int_value"]))
        if kind is not None:
            setattr(metric, kind, draw(VALUES[kind]))
    return payload.SerializeToString()


sparkplug_messages = st.tuples(
    st.sampled_from(SPARKPLUG_KINDS),
    st.one_of(st.just("G1"), st.sampled_from(GROUPS)),
    st.one_of(st.just("E1"), st.sampled_from(["E1", "E2", "e\\"])),
    st.one_of(st.sampled_from(["", "D1"]), st.sampled_from(["", "D1", "d\\", "d\n"])),
    st.one_of(
        sparkplug_payloads(), sparkplug_payloads(), corrupted(sparkplug_payloads()), st.binary(max_size=40)
    ),
)


class FakeClient:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.published.append((topic, payload))


def _runner(topics: list[Topic]) -> MqttSourceRunner:
    config = MqttSource(url="mqtt://127.0.0.1:1883", client_id="fuzz", topics=topics)
    return MqttSourceRunner(config, SimpleNamespace())  # type: ignore[arg-type]


SPARKPLUG_TOPIC = Topic(filter="spBv1.0/#", format="sparkplug")


@FUZZ
@given(st.lists(sparkplug_messages, min_size=1, max_size=6))
def test_sparkplug_messages_give_points_or_a_counted_rejection(
    messages: list[tuple[str, str, str, str, bytes]],
) -> None:
    """A stream of births, data and deaths (valid, mutated or random bytes) through one host."""
    runner, client = _runner([SPARKPLUG_TOPIC]), FakeClient()
    for kind, group, edge, device, payload in messages:
        name = "/".join(["spBv1.0", group, kind, edge, *([device] if device else [])])
        try:
            points = runner._sparkplug(client, SPARKPLUG_TOPIC, name, payload, NOW_NS)  # type: ignore[arg-type]
        except Exception as exc:
            assert_counted(exc)
        else:
            assert_well_formed(points)
    for topic, request in client.published:
        assert topic.startswith("spBv1.0/") and "/NCMD/" in topic
        assert Payload.FromString(request).metrics[0].name == "Node Control/Rebirth"


def _birth_and_data(datatype: int, value: dict[str, Any], metric: str = "m") -> list[tuple[str, bytes]]:
    birth = Payload(seq=0)
    birth.metrics.add(name=metric, alias=1, datatype=datatype, **value)
    data = Payload(seq=1)
    data.metrics.add(alias=1, **value)
    return [
        ("spBv1.0/G/NBIRTH/E", birth.SerializeToString()),
        ("spBv1.0/G/NDATA/E", data.SerializeToString()),
    ]


@pytest.mark.parametrize(
    "messages",
    [
        _birth_and_data(8, {"long_value": 2**64 - 1}),  # UINT64 beyond InfluxDB's int64
        _birth_and_data(9, {"float_value": float("nan")}),
        _birth_and_data(12, {"string_value": "x"}, metric=""),  # empty field name
        _birth_and_data(12, {"string_value": "x"}, metric="a\\"),  # trailing backslash
        _birth_and_data(12, {"string_value": "x"}, metric="a\nb"),  # line break in the name
        [("spBv1.0/G\\/NDATA/E", Payload(seq=0).SerializeToString())],  # group ending in a backslash
    ],
)
def test_sparkplug_regressions(messages: list[tuple[str, bytes]]) -> None:
    runner, client = _runner([SPARKPLUG_TOPIC]), FakeClient()
    for name, payload in messages:
        try:
            points = runner._sparkplug(client, SPARKPLUG_TOPIC, name, payload, NOW_NS)  # type: ignore[arg-type]
        except Exception as exc:
            assert_counted(exc)
        else:
            assert_well_formed(points)


class FakePipeline:
    def __init__(self) -> None:
        self.rejected: list[str] = []
        self.points: list[Point] = []

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected.append(reason)

    def submit(self, points: list[Point], ack: Any = None) -> None:
        self.points.extend(points)


HANDLE_TOPICS = [
    Topic(filter="factory/+/+/+"),
    Topic(filter="plant/+/+/+/raw", format="number"),
    SPARKPLUG_TOPIC,
]


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.tuples(topic_names, json_payloads),
            st.tuples(st.just("plant/L1/S/sig/raw"), number_payloads),
            sparkplug_messages.map(lambda m: (f"spBv1.0/{m[1]}/{m[0]}/{m[2]}", m[4])),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_mqtt_source_counts_every_bad_message(messages: list[tuple[str, bytes]]) -> None:
    """Through the source itself: every rejection is counted with a reason, not an exception's repr."""
    runner, client = _runner(HANDLE_TOPICS), FakeClient()
    runner.pipeline = FakePipeline()  # type: ignore[assignment]
    batch = [(name, payload, mid, 1, NOW_NS) for mid, (name, payload) in enumerate(messages)]
    runner._handle(client, batch)  # type: ignore[arg-type]
    assert runner.messages == len(messages)
    assert len(runner.pipeline.rejected) <= len(messages)  # type: ignore[attr-defined]
    for reason in runner.pipeline.rejected:  # type: ignore[attr-defined]
        assert "\n" not in reason and "Error(" not in reason and "Overflow(" not in reason, reason
    assert_well_formed(runner.pipeline.points)  # type: ignore[attr-defined]


# -- mutations of plain data (config and experiment files) ---------------------------------------

NASTY_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.integers(min_value=10**18, max_value=10**400),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "1GB",
            "1GiB",
            "64MB",
            "1TB",
            "1e999",
            "-1",
            "-5s",
            "0",
            "0s",
            "9" * 400,
            "9" * 400 + "s",
            "9" * 400 + "GB",
            "1.5",
            "soon",
            "${NOPE}",
            "${NOPE:-5s}",
            "${MQTT_PASSWORD}",
            "${EMPTY}",
            "$${NOPE}",
            "${",
            "${1BAD}",
            "mqtt://",
            "mqtt://h:99999",
            "opc.tcp://",
            "http://",
            "nan",
            "inf",
            "auto",
            "exponential",
            "2001-13-01",
            "a\nb",
            "latin_hypercube",
            "full_factorial",
            "throughput_per_hour",
            "stations.mill.utilization",
        ]
    ),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(
        st.sampled_from(["dist", "mean", "low", "high", "type", "x"]), st.integers(-3, 3), max_size=2
    ),
    st.sampled_from(
        [
            {"until": {"kpi": "wip_mean", "half_width": 0.1, "min": 3, "max": 2}},
            {"until": {"kpi": "nope", "relative_half_width": -1}},
            {"type": "latin_hypercube", "samples": 0},
            {"scenarios": [{"id": 1}, {"id": "1"}]},
            {"scenarios": [{"stations.mill.nope": 1}]},
            {"low": "5min", "high": "1min"},
            {"low": 1.5, "high": 3, "integer": True},
            {"dist": "exponential", "mean": "5min"},
        ]
    ),
)
NASTY_VALUES = NASTY_VALUES.map(copy.deepcopy)  # a fresh copy each time: mutations change them in place
UNKNOWN_KEYS = st.one_of(st.sampled_from(["x", "", "name", "type", "1", "a\nb"]), st.text(max_size=6))


def _containers(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(data, dict | list):
        yield path, data
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for key, child in items:
            yield from _containers(child, (*path, key))


def mutate(draw: st.DrawFn, data: dict[str, Any], paths: st.SearchStrategy[str] | None = None) -> None:
    """Drop keys, change values to wrong types or odd strings, add unknown keys (in place)."""
    for _ in range(draw(st.integers(1, 4), label="mutations")):
        containers = list(_containers(data))
        _, node = draw(st.sampled_from(containers), label="where")
        keys = list(node.keys() if isinstance(node, dict) else range(len(node)))
        operation = draw(st.sampled_from(["drop", "set", "set", "add", "wrap"]), label="operation")
        if operation == "add" or not keys:
            if isinstance(node, dict):
                key = draw(paths if paths is not None and draw(st.booleans()) else UNKNOWN_KEYS)
                node[key] = draw(NASTY_VALUES)
            else:
                node.append(draw(NASTY_VALUES))
            continue
        key = draw(st.sampled_from(keys), label="key")
        if operation == "drop":
            del node[key]
        elif operation == "set":
            node[key] = draw(NASTY_VALUES, label="value")
        else:
            node[key] = [node[key]]


def _write(folder: Path, text: str, suffix: str = ".yaml") -> Path:
    path = folder / f"f{next(_files)}{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


RAW_VALUES = [
    "2001-13-01",
    "2001-02-30",
    "2001-02-03 25:00:00",
    "!!binary x",
    "!!python/object:os.system x",
    "*nope",
    "&a",
    "{",
    "[[[",
    "? [a]",
    "'",
    "\t",
    "1e999",
    "0o9",
    ".inf",
    "[" * 1000 + "]" * 1000,
    "{a: " * 300 + "1" + "}" * 300,
]


def mutate_text(draw: st.DrawFn, text: str) -> str:
    """Replace the value of a random line with a raw YAML token, or insert or cut text."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 2), label="text mutations")):
        index = draw(st.integers(0, max(len(lines) - 1, 0)), label="line")
        operation = draw(st.sampled_from(["value", "value", "insert", "cut"]), label="text op")
        if not lines:
            lines = [""]
        line = lines[index]
        if operation == "value":
            head = line.split(":", 1)[0] + ": " if ":" in line else line.split("- ", 1)[0] + "- "
            lines[index] = head + draw(st.one_of(st.sampled_from(RAW_VALUES), st.text(max_size=8)))
        elif operation == "insert":
            position = draw(st.integers(0, len(line)))
            lines[index] = line[:position] + draw(st.text(max_size=4)) + line[position:]
        else:
            del lines[index:]
    return "\n".join(lines) + "\n"


# -- connector config files -----------------------------------------------------------------------


def _sample_config() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for sample in sorted((ROOT / "connectors").glob("*/sample.yaml")):
        merged.update(yaml.safe_load(sample.read_text()))
    return merged


SAMPLE_CONFIG = _sample_config()


def _config_error_line(source: str, exc: ConfigError) -> str:
    message = config_message(source, exc)
    assert message.startswith(f"{source}: ") and "\n" not in message, message
    outcome(f"refused: {_head(message.removeprefix(source + ': '))}")
    return message


@pytest.mark.parametrize("topic", [{"tag_keys": [""]}, {"tags": {"": "x"}}])
def test_topics_refuse_empty_tag_names(topic: dict[str, Any]) -> None:
    document = {"mqtt": [{"url": "mqtt://h", "topics": [{"filter": "a/#", **topic}]}]}
    with pytest.raises(ConfigError) as refused:
        config_from_dict(document, "fuzz.yaml", ENV)
    assert "at least 1 character" in _config_error_line("fuzz.yaml", refused.value)


def test_the_sample_configs_load() -> None:
    loaded = config_from_dict(copy.deepcopy(SAMPLE_CONFIG), "samples", ENV)
    assert loaded.config.mqtt and loaded.config.opcua


@st.composite
def mutated(draw: st.DrawFn, base: Any, paths: st.SearchStrategy[str] | None = None) -> dict[str, Any]:
    document = copy.deepcopy(base)
    mutate(draw, document, paths)
    return document


@st.composite
def yaml_texts(draw: st.DrawFn, base: Any, paths: st.SearchStrategy[str] | None = None) -> str:
    document = draw(mutated(base, paths)) if draw(st.booleans(), label="mutate data") else base
    return mutate_text(draw, yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False))


def _with(base: dict[str, Any], section: str, **values: Any) -> dict[str, Any]:
    document = copy.deepcopy(base)
    target = document[section][0] if isinstance(document[section], list) else document[section]
    target.update(values)
    return document


@FUZZ
@given(mutated(SAMPLE_CONFIG))
@example(_with(SAMPLE_CONFIG, "opcua", poll_interval=10**400))  # float() overflowed
@example(_with(SAMPLE_CONFIG, "spool", max_bytes="9" * 400 + "GB"))  # int(inf)
@example({**SAMPLE_CONFIG, "a\nb": "${A}"})  # the field path of an unset variable broke the line
def test_connector_configs_load_or_name_the_field(document: dict[str, Any]) -> None:
    try:
        config_from_dict(document, "fuzz.yaml", ENV)
    except ConfigError as exc:
        _config_error_line("fuzz.yaml", exc)
    else:
        outcome("loaded")


CONFIG_TEXT = yaml.safe_dump(SAMPLE_CONFIG, sort_keys=False)


@fuzz(100)
@given(yaml_texts(SAMPLE_CONFIG))
@example(CONFIG_TEXT + "x: 2001-13-01\n")  # PyYAML's dates raise ValueError
@example(CONFIG_TEXT + "x: " + "[" * 1000 + "]" * 1000 + "\n")  # RecursionError
def test_connector_config_files_load_or_give_one_line(folder: Path, text: str) -> None:
    path = _write(folder, text)
    try:
        read_config(path, environ=ENV)
    except ConfigError as exc:
        _config_error_line(str(path), exc)
    else:
        outcome("loaded")


@few(6)
@given(yaml_texts(SAMPLE_CONFIG))
def test_fabbrica_connect_refuses_bad_configs_in_one_line(folder: Path, text: str) -> None:
    path = _write(folder, text)
    try:
        read_config(path, environ=ENV)
    except ConfigError:
        pass
    else:
        assume(False)  # a valid config would start connecting
    result = cli.invoke(app, ["connect", str(path)], env=ENV)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- experiment files -----------------------------------------------------------------------------

DEMONSTRATOR = ROOT / "simulations" / "lines" / "demonstrator.yaml"
EXPERIMENTS = sorted((ROOT / "simulations" / "experiments").glob("*.yaml"))
SAMPLE_EXPERIMENTS = [{**yaml.safe_load(path.read_text()), "line": str(DEMONSTRATOR)} for path in EXPERIMENTS]
DOTTED = st.lists(
    st.sampled_from(
        [
            *("stations", "mill", "lathe", "wash", "buffer", "capacity", "failures", "mttr", "mtbf"),
            *("cycle_time", "release", "horizon", "x", "", " "),
        ]
    ),
    min_size=1,
    max_size=4,
).map(".".join)


def _scenario_count(spec: Any) -> int:
    design = spec.resolved_design
    if isinstance(design, Scenarios):
        return len(design.scenarios)
    if isinstance(design, LatinHypercube):
        return design.samples
    assert isinstance(design, FullFactorial)
    total = 1
    for factor in spec.factors.values():
        total *= (factor.levels or 2) if isinstance(factor, Range) else len(factor)
    return total


def _load_experiment(path: Path, document: Any) -> None:
    """Experiment.from_yaml (spec, line and every scenario's line), or a one-line InputError."""
    if isinstance(document, dict):
        try:
            spec = spec_from_dict(document, str(path))
        except InputError:
            pass
        else:
            # millions of scenarios are valid, just slow to build: check a few hundred at most
            assume(_scenario_count(spec) <= 200)
    try:
        Experiment.from_yaml(path)
    except InputError as exc:
        _experiment_error_line(str(path), exc)
    else:
        outcome("loaded")


def _experiment_error_line(source: str, exc: InputError) -> None:
    message = str(exc)
    assert message.startswith(f"{source}: ") and "\n" not in message, message
    outcome(f"refused: {_head(message.removeprefix(source + ': '))}")


def _head(message: str) -> str:
    """`factors.stations.mill: ...` -> `factors`: the field (or kind of problem) for the statistics."""
    return message.split(":")[0].split(" at line")[0].split(".")[0].split("[")[0][:24]


def test_the_sample_experiments_load() -> None:
    for document in SAMPLE_EXPERIMENTS:
        spec_from_dict(document, "sample.yaml")


experiments = st.sampled_from(SAMPLE_EXPERIMENTS)
MTTR = SAMPLE_EXPERIMENTS[[path.stem for path in EXPERIMENTS].index("mttr_improvement")]
BUFFERS = SAMPLE_EXPERIMENTS[[path.stem for path in EXPERIMENTS].index("buffer_allocation")]


@FUZZ
@given(experiments.flatmap(lambda base: mutated(base, DOTTED)))
@example({**MTTR, "factors": {"stations.mill.buffer": {"low": 1, "high": 10**400}}})  # float() overflowed
@example({**MTTR, "factors": {"stations.mill.buffer": {"low": 1, "high": 1e999, "integer": True}}})
@example({**MTTR, "horizon": 10**400})
@example({**BUFFERS, "design": {"scenarios": [{"id": "\n", "stations.lathe.buffer": -1}]}})  # two lines
def test_experiment_specs_validate_or_name_the_field(document: dict[str, Any]) -> None:
    try:
        spec_from_dict(document, "fuzz.yaml")
    except InputError as exc:
        _experiment_error_line("fuzz.yaml", exc)
    else:
        outcome("valid")


MTTR_TEXT = yaml.safe_dump(MTTR, sort_keys=False)


@fuzz(100)
@given(experiments.flatmap(lambda base: yaml_texts(base, DOTTED)))
@example(MTTR_TEXT + "seed: 2001-13-01\n")  # PyYAML's dates raise ValueError
@example(MTTR_TEXT + "x: " + "[" * 1000 + "]" * 1000 + "\n")  # RecursionError
@example(MTTR_TEXT.replace("horizon: 24h", "horizon: " + "9" * 400))  # float() overflowed
def test_experiment_files_load_or_give_one_line(folder: Path, text: str) -> None:
    path = _write(folder, text)
    try:
        parsed = yaml.load(text, Loader=yaml.CSafeLoader)
    except Exception:  # not YAML: the loader says so
        parsed = None
    _load_experiment(path, parsed)


@few(6)
@given(experiments.flatmap(lambda base: yaml_texts(base, DOTTED)))
def test_fabbrica_experiment_run_refuses_bad_files_in_one_line(folder: Path, text: str) -> None:
    path = _write(folder, text)
    try:
        Experiment.from_yaml(path)
    except InputError:
        pass
    else:
        assume(False)  # a valid experiment would run
    result = cli.invoke(app, ["experiment", "run", str(path), "--out", str(folder / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr


# -- the real command, for the crashes found ------------------------------------------------------

MQTT_CONFIG = "mqtt:\n  - url: mqtt://127.0.0.1:1883\n    topics: [{filter: a/#}]\n"


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (["connect"], MQTT_CONFIG + "spool: {path: 2001-13-01}\n"),  # PyYAML's date: ValueError
        (["connect"], MQTT_CONFIG + "health: {interval: " + "9" * 400 + "}\n"),  # float() overflowed
        (["connect"], MQTT_CONFIG + "spool: {max_bytes: '" + "9" * 400 + "GB'}\n"),  # int(inf)
        (["connect"], MQTT_CONFIG + "x: " + "[" * 1000 + "]" * 1000 + "\n"),  # RecursionError
        (["experiment", "run"], f"line: {DEMONSTRATOR}\nseed: 2001-13-01\n"),
        (["experiment", "run"], f"line: {DEMONSTRATOR}\nx: " + "[" * 1000 + "]" * 1000 + "\n"),
    ],
)
def test_cli_refuses_bad_files(folder: Path, command: list[str], text: str) -> None:
    path = _write(folder, text)
    out = ["--out", str(folder / "out")] if command[0] == "experiment" else []
    result = subprocess.run(
        [sys.executable, "-m", "fabbrica", *command, str(path), *out],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr

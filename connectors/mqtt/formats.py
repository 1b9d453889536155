"""Payload formats: how one MQTT message becomes points.

- `json`: an object (or a list of objects) such as `{"ts": ..., "value": 21.5, "unit": "C"}`.
- `number`: the payload is a plain number, e.g. `21.5`; the time is the receive time.
- `sparkplug`: Sparkplug B protobuf (see `connectors.mqtt.sparkplug`).

Tags come from the topic levels (`topic_tags`) and from JSON members (`tag_keys`).

Whatever a message holds, the answer is points that line protocol can carry or a BadPoint
(counted as rejected): names must be non-empty, without line breaks, not ending in a backslash
(it would escape the separator after it) and valid UTF-8; integers must fit InfluxDB's int64.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.common.points import BadPoint, FieldValue, Point, check_time, field_value, timestamp_ns
from connectors.mqtt.config import Topic
from connectors.mqtt.sparkplug import Decoded

_TAG_CACHE: dict[tuple[int, str, bool], dict[str, str]] = {}


def cached_topic_tags(topic: Topic, name: str, skip_last: bool) -> dict[str, str]:
    """`topic_tags` of a topic name, remembered (a line has a few hundred topics, not millions)."""
    key = (id(topic), name, skip_last)
    tags = _TAG_CACHE.get(key)
    if tags is None:
        if len(_TAG_CACHE) > 100_000:
            _TAG_CACHE.clear()
        tags = _TAG_CACHE[key] = topic_tags(topic, name.split("/"), skip_last)
    return tags


def topic_tags(topic: Topic, levels: list[str], skip_last: bool = False) -> dict[str, str]:
    names = topic.topic_tags.split("/")
    tags = dict(topic.tags)
    count = len(levels) - 1 if skip_last else len(levels)
    for name, value in zip(names, levels[:count], strict=False):
        if name and name not in ("_", "+", "#"):
            tags[name] = checked(value, f"tag {name}", empty=True)
    return tags


def checked(text: str, what: str, empty: bool = False) -> str:
    """`text` if line protocol can carry it as a name (or, with `empty`, a tag value), else BadPoint."""
    if text and text[-1] != "\\" and "\n" not in text and (text.isascii() or _utf8(text)):
        return text
    if not text:
        if empty:
            return text
        problem = "is empty"
    elif text[-1] == "\\":
        problem = "ends in a backslash"
    elif "\n" in text:
        problem = "has a line break"
    else:
        problem = "is not valid UTF-8"
    raise BadPoint(f"{what} {text[:40]!r} {problem}")


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _number(value: Any, integers: str) -> FieldValue:
    value = field_value(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if integers == "float":
            try:
                return float(value)
            except OverflowError:
                raise BadPoint(f"number out of range: {_short(value)}") from None
        if not -(2**63) <= value < 2**63:
            raise BadPoint(f"integer beyond InfluxDB's 64 bits: {_short(value)}")
    elif isinstance(value, str) and not value.isascii() and not _utf8(value):
        raise BadPoint(f"string value {value[:40]!r} is not valid UTF-8")
    return value


def _time(value: Any) -> int:
    try:
        return check_time(timestamp_ns(value))
    except BadPoint:
        raise
    except (ArithmeticError, ValueError):  # decimal.Overflow, or an integer too long to print
        raise BadPoint(f"absurd timestamp {_short(value)}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def json_points(topic: Topic, name: str, payload: bytes, received_ns: int) -> list[Point]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadPoint(f"not JSON: {exc}") from None
    items = document if isinstance(document, list) else [document]
    events = topic.events_level is not None and name.rpartition("/")[2] == topic.events_level
    measurement = topic.events_measurement if events else topic.default_measurement
    base_tags = cached_topic_tags(topic, name, events)
    points = []
    for item in items:
        if isinstance(item, int | float) and not isinstance(item, bool) and not events:
            points.append(
                Point(measurement, dict(base_tags), {"value": _number(item, topic.integers)}, received_ns)
            )
            continue
        if not isinstance(item, dict):
            raise BadPoint(f"expected a JSON object, got {type(item).__name__}")
        tags = dict(base_tags)
        fields: dict[str, FieldValue] = {}
        stamp = received_ns
        only_value = not events and topic.value_key in item
        for key, value in item.items():
            if key == topic.timestamp_key:
                if value is not None:
                    stamp = _time(value)
            elif key in topic.tag_keys:
                if value is not None and value != "":
                    tags[key] = checked(str(value), f"tag {key}", empty=True)
            elif (only_value and key != topic.value_key) or value is None or isinstance(value, dict | list):
                continue
            else:
                fields[checked(key, "field name")] = _number(value, topic.integers)
        if not fields:
            raise BadPoint("no field values")
        points.append(Point(measurement, tags, fields, stamp))
    return points


def number_points(topic: Topic, name: str, payload: bytes, received_ns: int) -> list[Point]:
    text = payload.decode("utf-8", errors="replace").strip()
    try:
        value: FieldValue = float(text)
    except ValueError:
        raise BadPoint(f"not a number: {text[:40]!r}") from None
    value = field_value(value)
    return [
        Point(topic.default_measurement, cached_topic_tags(topic, name, False), {"value": value}, received_ns)
    ]


def sparkplug_points(topic: Topic, decoded: Decoded, received_ns: int) -> list[Point]:
    tags = dict(topic.tags)
    tags["group"] = checked(decoded.group, "group", empty=True)
    tags["edge_node"] = checked(decoded.edge_node, "edge node", empty=True)
    if decoded.device:
        tags["device"] = checked(decoded.device, "device")
    by_time: dict[int, dict[str, FieldValue]] = {}
    for name, value, stamp_ms in decoded.values:
        stamp = stamp_ms if stamp_ms is not None else decoded.payload_ms
        time_ns = check_time(stamp * 1_000_000) if stamp is not None else received_ns
        by_time.setdefault(time_ns, {})[checked(name, "metric")] = _number(value, "keep")
    measurement = topic.default_measurement
    return [Point(measurement, dict(tags), fields, time_ns) for time_ns, fields in by_time.items()]

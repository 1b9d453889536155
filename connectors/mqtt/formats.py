"""Payload formats: how one MQTT message becomes points.

- `json`: an object (or a list of objects) such as `{"ts": ..., "value": 21.5, "unit": "C"}`.
- `number`: the payload is a plain number, e.g. `21.5`; the time is the receive time.
- `sparkplug`: Sparkplug B protobuf (see `connectors.mqtt.sparkplug`).

Tags come from the topic levels (`topic_tags`) and from JSON members (`tag_keys`).
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
            tags[name] = value
    return tags


def _number(value: Any, integers: str) -> FieldValue:
    value = field_value(value)
    if integers == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def json_points(topic: Topic, name: str, payload: bytes, received_ns: int) -> list[Point]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
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
                    stamp = check_time(timestamp_ns(value))
            elif key in topic.tag_keys:
                if value is not None and value != "":
                    tags[key] = str(value)
            elif (only_value and key != topic.value_key) or value is None or isinstance(value, dict | list):
                continue
            else:
                fields[key] = _number(value, topic.integers)
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
        Point(topic.default_measurement, topic_tags(topic, name.split("/")), {"value": value}, received_ns)
    ]


def sparkplug_points(topic: Topic, decoded: Decoded, received_ns: int) -> list[Point]:
    tags = dict(topic.tags)
    tags.update({"group": decoded.group, "edge_node": decoded.edge_node})
    if decoded.device:
        tags["device"] = decoded.device
    by_time: dict[int, dict[str, FieldValue]] = {}
    for name, value, stamp_ms in decoded.values:
        stamp = stamp_ms if stamp_ms is not None else decoded.payload_ms
        time_ns = check_time(stamp * 1_000_000) if stamp is not None else received_ns
        by_time.setdefault(time_ns, {})[name] = field_value(value)
    measurement = topic.default_measurement
    return [Point(measurement, dict(tags), fields, time_ns) for time_ns, fields in by_time.items()]

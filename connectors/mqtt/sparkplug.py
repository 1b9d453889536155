"""Sparkplug B payloads: the protobuf schema, and the host-side state that decodes them.

The message types are built at import from a descriptor that mirrors the Payload and
Payload.Metric messages of the Sparkplug B specification (same field numbers, so any
Sparkplug edge node's payload parses; DataSet, Template and PropertySet values are skipped).

A host keeps, per edge node, the aliases announced in NBIRTH/DBIRTH and the expected
sequence number (0-255). DATA messages name metrics by alias; a sequence gap or an unknown
alias makes the host ask the edge node for a rebirth (NCMD `Node Control/Rebirth`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> tuple[type[Any], type[Any]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="fabbrica_sparkplug_b.proto", package="org.eclipse.tahu.protobuf", syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    optional = _F.LABEL_OPTIONAL
    for name, number, kind in (
        ("name", 1, _F.TYPE_STRING),
        ("alias", 2, _F.TYPE_UINT64),
        ("timestamp", 3, _F.TYPE_UINT64),
        ("datatype", 4, _F.TYPE_UINT32),
        ("is_historical", 5, _F.TYPE_BOOL),
        ("is_transient", 6, _F.TYPE_BOOL),
        ("is_null", 7, _F.TYPE_BOOL),
    ):
        metric.field.add(name=name, number=number, type=kind, label=optional)
    for name, number, kind in (
        ("int_value", 10, _F.TYPE_UINT32),
        ("long_value", 11, _F.TYPE_UINT64),
        ("float_value", 12, _F.TYPE_FLOAT),
        ("double_value", 13, _F.TYPE_DOUBLE),
        ("boolean_value", 14, _F.TYPE_BOOL),
        ("string_value", 15, _F.TYPE_STRING),
        ("bytes_value", 16, _F.TYPE_BYTES),
    ):
        metric.field.add(name=name, number=number, type=kind, label=optional, oneof_index=0)
    payload.field.add(name="timestamp", number=1, type=_F.TYPE_UINT64, label=optional)
    payload.field.add(
        name="metrics",
        number=2,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".org.eclipse.tahu.protobuf.Payload.Metric",
    )
    payload.field.add(name="seq", number=3, type=_F.TYPE_UINT64, label=optional)
    payload.field.add(name="uuid", number=4, type=_F.TYPE_STRING, label=optional)
    payload.field.add(name="body", number=5, type=_F.TYPE_BYTES, label=optional)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    payload_type = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload")
    )
    metric_type = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload.Metric")
    )
    return payload_type, metric_type


Payload, Metric = _build()

# Sparkplug B data types (specification, section 6.4.16)
INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64 = range(1, 9)
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT = range(9, 15)
CONTROL_PREFIXES = ("Node Control/", "Device Control/", "Properties/")
REBIRTH = "Node Control/Rebirth"


def metric_value(metric: Any, datatype: int | None) -> float | int | bool | str | None:
    """The metric's value in its data type (signed integers travel as unsigned on the wire)."""
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    if kind is None or kind == "bytes_value":
        return None
    value = getattr(metric, kind)
    if kind == "int_value" and datatype in (INT8, INT16, INT32) and value >= 1 << 31:
        value -= 1 << 32
    elif kind == "long_value" and datatype == INT64 and value >= 1 << 63:
        value -= 1 << 64
    if kind == "float_value":
        value = float(value)
    return value


def rebirth_request(timestamp_ms: int | None = None) -> bytes:
    """The NCMD payload asking an edge node to publish its births again."""
    payload = Payload(timestamp=timestamp_ms or int(time.time() * 1000))
    payload.metrics.add(name=REBIRTH, timestamp=payload.timestamp, datatype=BOOLEAN, boolean_value=True)
    return payload.SerializeToString()


@dataclass
class EdgeNode:
    """What a host knows of one edge node: its aliases (node and devices) and the next sequence."""

    aliases: dict[tuple[str, int], tuple[str, int]] = field(
        default_factory=dict
    )  # (device, alias) -> (name, type)
    types: dict[tuple[str, str], int] = field(default_factory=dict)  # (device, name) -> datatype
    next_seq: int | None = None
    last_rebirth: float = 0.0


@dataclass
class Decoded:
    group: str
    edge_node: str
    device: str
    values: list[tuple[str, float | int | bool | str, int | None]]  # (name, value, timestamp ms)
    payload_ms: int | None
    rebirth: str | None = None  # why a rebirth should be requested


class SparkplugHost:
    """Decodes Sparkplug B messages for many edge nodes, tracking births, aliases and sequences."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], EdgeNode] = {}

    def decode(self, topic: str, data: bytes) -> Decoded | None:
        levels = topic.split("/")
        if len(levels) < 4 or levels[0] != "spBv1.0":
            raise ValueError(f"not a Sparkplug B topic: {topic}")
        group, kind, edge = levels[1], levels[2], levels[3]
        device = levels[4] if len(levels) > 4 else ""
        if kind in ("NCMD", "DCMD", "STATE"):
            return None
        payload = Payload.FromString(data)
        key = (group, edge)
        node = self.nodes.setdefault(key, EdgeNode())
        seq = payload.seq if payload.HasField("seq") else None
        reason = None
        if kind == "NBIRTH":
            node.aliases = {}
            node.types = {}
            node.next_seq = None
        elif kind == "NDEATH":
            node.next_seq = None
            return Decoded(group, edge, device, [], payload.timestamp or None)
        if kind != "NDEATH" and seq is not None:
            if node.next_seq is not None and seq != node.next_seq and kind != "NBIRTH":
                reason = f"sequence gap: expected {node.next_seq}, got {seq}"
            elif node.next_seq is None and kind != "NBIRTH":
                reason = "data before birth"
            node.next_seq = (seq + 1) % 256
        values: list[tuple[str, float | int | bool | str, int | None]] = []
        birth = kind in ("NBIRTH", "DBIRTH")
        for metric in payload.metrics:
            name = metric.name if metric.HasField("name") else None
            datatype = metric.datatype if metric.HasField("datatype") else None
            if birth and name is not None:
                node.types[(device, name)] = datatype or 0
                if metric.HasField("alias"):
                    node.aliases[(device, metric.alias)] = (name, datatype or 0)
            if name is None and metric.HasField("alias"):
                known = node.aliases.get((device, metric.alias))
                if known is None:
                    reason = reason or f"unknown alias {metric.alias}"
                    continue
                name, datatype = known
            if name is None or name.startswith(CONTROL_PREFIXES) or name == "bdSeq":
                continue
            if datatype is None:
                datatype = node.types.get((device, name))
            value = metric_value(metric, datatype)
            if value is None:
                continue
            stamp = metric.timestamp if metric.HasField("timestamp") else None
            values.append((name, value, stamp))
        return Decoded(group, edge, device, values, payload.timestamp or None, reason)

    def should_request_rebirth(self, group: str, edge: str, min_interval: float = 5.0) -> bool:
        node = self.nodes.setdefault((group, edge), EdgeNode())
        now = time.monotonic()
        if now - node.last_rebirth < min_interval:
            return False
        node.last_rebirth = now
        return True

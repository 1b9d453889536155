"""OPC UA source options against a real asyncua server whose values the test writes itself.

tests/connectors/opcua_server.py with period 0 writes what the test sends on its stdin, with
the source and server timestamps the test chooses; the connector (`fabbrica connect`, a child
process) subscribes and writes into the embedded historian, which is read after it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.sinks.embedded import Historian

from .conftest import Connector, wait_until
from .manual_plc import ManualServer, node_id


def _source(server: ManualServer, measurement: str, node: str, **options: Any) -> dict[str, Any]:
    return {
        "name": measurement,
        "endpoint": server.url,
        "security_policy": "None",
        "nodes": [node],
        "sampling_interval": "20ms",
        "publishing_interval": "50ms",
        "measurement": measurement,
        **options,
    }


def _run(
    write_config: Callable[..., Path],
    connector_factory: Callable[..., Connector],
    sources: list[dict[str, Any]],
    writes: Callable[[], None],
) -> Historian:
    """Start a connector with `sources`, wait for its subscriptions, run `writes`, stop, open the result."""
    config = {"name": "options", "sink": {"type": "embedded", "path": "h.duckdb"}, "opcua": sources}
    path = write_config(config)
    connector = connector_factory(path).start()

    def ready() -> bool:  # connected: subscribed, or polling
        return connector.output().count("connected, 1 variables") == len(sources)

    wait_until(ready, timeout=30)
    writes()
    time.sleep(1.0)  # a few publishing intervals
    assert connector.stop() == 0, connector.output()
    return Historian(path.parent / "h.duckdb", read_only=True)


def _values(frame: pd.DataFrame, field: str = "Temperature") -> list[float]:
    return list(frame.dropna(subset=[field])[field])


def test_absolute_deadband_drops_small_changes_and_keeps_large_ones(
    manual_server, write_config, connector_factory
):
    base = datetime.now(UTC) - timedelta(minutes=5)
    sequence = [10.0, 10.3, 10.5, 12.0, 12.4, 10.9]  # steps of 0.3, 0.2, 1.5, 0.4, 1.5

    def writes() -> None:
        for index, value in enumerate(sequence):
            stamp = base + timedelta(milliseconds=index)
            manual_server.write("Press", "Temperature", value, stamp, stamp)

    node = node_id("Press", "Temperature")
    sources = [
        _source(manual_server, "deadband", node, deadband={"type": "absolute", "value": 1.0}),
        _source(manual_server, "every", node),
    ]
    historian = _run(write_config, connector_factory, sources, writes)
    end = base + timedelta(seconds=1)  # the values of the test, not the initial one
    every = _values(historian.query("every", start=base, end=end))
    banded = _values(historian.query("deadband", start=base, end=end))
    assert every == sequence, "without a deadband every change lands"
    assert banded == [10.0, 12.0, 10.9], "changes of 1.0 or less are dropped by the server"


def test_timestamp_source_server_and_receive(manual_server, write_config, connector_factory):
    now = datetime.now(UTC).replace(microsecond=0)
    source, server = now - timedelta(hours=1), now - timedelta(hours=2)
    node = node_id("Saw", "Temperature")
    sources = [
        _source(manual_server, "by_source", node, timestamp="source"),
        _source(manual_server, "by_server", node, timestamp="server"),
        _source(manual_server, "by_receive", node, timestamp="receive"),
        _source(manual_server, "polled_server", node, timestamp="server", mode="poll", poll_interval="0.1s"),
    ]
    written: list[datetime] = []

    def writes() -> None:
        written.append(datetime.now(UTC))
        manual_server.write("Saw", "Temperature", 123.5, source, server)

    historian = _run(write_config, connector_factory, sources, writes)
    stopped = datetime.now(UTC)

    def times(measurement: str) -> list[pd.Timestamp]:
        frame = historian.query(measurement)
        return list(frame[frame["Temperature"] == 123.5]["time"])

    assert times("by_source") == [pd.Timestamp(source)]
    assert times("by_server") == [pd.Timestamp(server)]
    assert times("polled_server") == [pd.Timestamp(server)]
    received = times("by_receive")
    assert len(received) == 1, received
    assert pd.Timestamp(written[0]) <= received[0] <= pd.Timestamp(stopped), "the connector's clock"

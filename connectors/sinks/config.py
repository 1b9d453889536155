"""Configuration of the sinks; `type` chooses one of those in the registry.

sink: {type: influxdb1, url: http://127.0.0.1:8086, database: plant}
sink: {type: influxdb2, url: http://127.0.0.1:8086, token: ${INFLUX_TOKEN}, org: acme, bucket: plant}
sink: {type: embedded, path: historian.duckdb}

`SinkConfig` is the discriminated union of every registered sink's settings, built in
`connectors.sinks.registry`; each settings model lives in its sink's folder.
"""

from __future__ import annotations

from connectors.sinks.base import SinkSettings
from connectors.sinks.embedded.config import EmbeddedSink
from connectors.sinks.influxdb1.config import InfluxDB1Sink
from connectors.sinks.influxdb2.config import InfluxDB2Sink
from connectors.sinks.registry import SINK_TYPES, SinkConfig

__all__ = ["SINK_TYPES", "EmbeddedSink", "InfluxDB1Sink", "InfluxDB2Sink", "SinkConfig", "SinkSettings"]

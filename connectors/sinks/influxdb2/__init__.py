"""InfluxDB 2.x/3.x: written through the v2 write API (influxdb-client), read back through the
v1-compatible InfluxQL `/query`, the bucket as the database and the token in the header.

`config.InfluxDB2Sink` is its settings, `writer.InfluxDB2` its writer; the reader is the
InfluxQL client shared with 1.x (`connectors.sinks.influxql`). Both are imported when first
opened, so that reading a config file does not load influxdb-client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sinks.influxdb2.config import InfluxDB2Sink

if TYPE_CHECKING:
    from connectors.sinks.base import Sink, SinkReader
    from connectors.sinks.influxdb2.writer import InfluxDB2

__all__ = ["InfluxDB2", "InfluxDB2Sink", "open_reader", "open_writer"]


def open_writer(config: InfluxDB2Sink) -> Sink:
    from connectors.sinks.influxdb2.writer import InfluxDB2

    return InfluxDB2(config)


def open_reader(config: InfluxDB2Sink) -> SinkReader:
    from connectors.sinks.influxql import InfluxQLReader, authorization

    token = authorization(None, token=config.token.get_secret_value())
    # not probed before a run: the v1 API of 2.x/3.x answers SHOW DATABASES differently
    return InfluxQLReader(str(config.url), config.bucket, token, probe=False)


def __getattr__(name: str) -> Any:  # the writer, imported on first use
    if name == "InfluxDB2":
        from connectors.sinks.influxdb2 import writer

        return writer.InfluxDB2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""InfluxDB 1.x: written through the v1 `/write` API, read back through InfluxQL (`/query`).

`config.InfluxDB1Sink` is its settings, `writer.InfluxDB1` its writer; it reads through the
InfluxQL client shared with 2.x/3.x (`connectors.sinks.influxql`), user and password in a
Basic Authorization header. The writer and the reader are imported when first opened, so
that reading a config file does not load aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sinks.influxdb1.config import InfluxDB1Sink

if TYPE_CHECKING:
    from connectors.sinks.base import Sink, SinkReader
    from connectors.sinks.influxdb1.writer import InfluxDB1
    from connectors.sinks.influxql import QueryError, authorization, influxql, query

__all__ = [
    "InfluxDB1",
    "InfluxDB1Sink",
    "QueryError",
    "authorization",
    "influxql",
    "open_reader",
    "open_writer",
    "query",
]


def open_writer(config: InfluxDB1Sink) -> Sink:
    from connectors.sinks.influxdb1.writer import InfluxDB1

    return InfluxDB1(config)


def open_reader(config: InfluxDB1Sink) -> SinkReader:
    from connectors.sinks.influxql import InfluxQLReader, authorization

    password = config.password.get_secret_value() if config.password else None
    return InfluxQLReader(str(config.url), config.database, authorization(config.username, password))


def __getattr__(name: str) -> Any:  # the writer and the InfluxQL client, imported on first use
    if name == "InfluxDB1":
        from connectors.sinks.influxdb1 import writer

        return writer.InfluxDB1
    if name in ("QueryError", "authorization", "influxql", "query"):
        from connectors.sinks import influxql

        return getattr(influxql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The embedded historian: points in a DuckDB file, for a testbed with no database server.

`config.EmbeddedSink` is its settings, `historian.Historian` the file and its query,
`writer.Embedded` the sink and `reader.HistorianReader` its reader. They are imported when
first opened, so that reading a config file does not load DuckDB and pandas.

    from connectors.sinks.embedded import Historian
    frame = Historian("historian.duckdb", read_only=True).query("machine", start, end)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sinks.embedded.config import EmbeddedSink

if TYPE_CHECKING:
    from connectors.sinks.base import Sink, SinkReader
    from connectors.sinks.embedded.historian import Historian
    from connectors.sinks.embedded.writer import Embedded

__all__ = ["Embedded", "EmbeddedSink", "Historian", "open_reader", "open_writer"]


def open_writer(config: EmbeddedSink) -> Sink:
    from connectors.sinks.embedded.writer import Embedded

    return Embedded(config)


def open_reader(config: EmbeddedSink) -> SinkReader:
    from connectors.sinks.embedded.reader import HistorianReader

    return HistorianReader(config.path)


def __getattr__(name: str) -> Any:  # the historian and the writer, imported on first use
    if name == "Historian":
        from connectors.sinks.embedded import historian

        return historian.Historian
    if name == "Embedded":
        from connectors.sinks.embedded import writer

        return writer.Embedded
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

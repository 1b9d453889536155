"""The sinks, one line each: how a `type:` becomes settings, a writer and a reader.

Everything that writes to a sink or reads one back asks here, never by naming a type: the
connectors' pipeline, the twin's results, the calibration's sources and the demo. A `sink:`
section is read by `read_sink` alone, from a sink-only file or a whole connector config.

    loaded = read_sink("connector.yaml")           # settings, the file's folder, the secrets used
    sink = open_writer(loaded.config)             # await sink.open(); await sink.write(...)
    frame = await open_reader(loaded.config).query("machine", start_ns, end_ns)

Adding a sink is one folder (its settings, a writer and a reader; see README.md) and one
line in `SINKS`; the `SinkConfig` union, the `type:` error message and every reader of
config files follow from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from connectors.common.secrets import EnvError, substitute
from connectors.sinks import embedded, influxdb1, influxdb2
from connectors.sinks.base import Sink, SinkReader, SinkSettings


@dataclass(frozen=True)
class Registered:
    """A sink: its `type:` name, its settings model, and how to open its writer and its reader."""

    type: str
    settings: type[SinkSettings]
    writer: Callable[[Any], Sink]
    reader: Callable[[Any], SinkReader]


SINKS = (
    Registered("influxdb1", influxdb1.InfluxDB1Sink, influxdb1.open_writer, influxdb1.open_reader),
    Registered("influxdb2", influxdb2.InfluxDB2Sink, influxdb2.open_writer, influxdb2.open_reader),
    Registered("embedded", embedded.EmbeddedSink, embedded.open_writer, embedded.open_reader),
)
SINK_TYPES = tuple(sink.type for sink in SINKS)
_BY_TYPE = {sink.type: sink for sink in SINKS}


def registered(config: SinkSettings) -> Registered:
    """The registry line of `config`'s sink; ValueError for settings of no registered sink."""
    sink = _BY_TYPE.get(config.type)
    if sink is None or not isinstance(config, sink.settings):
        raise ValueError(f"no registered sink for {type(config).__name__} (type {config.type!r})")
    return sink


def open_writer(config: SinkSettings, base: Path | None = None) -> Sink:
    """The writer of `config` (not yet opened); relative paths are taken against `base`."""
    return registered(config).writer(config if base is None else config.resolved(base))


def open_reader(config: SinkSettings, base: Path | None = None) -> SinkReader:
    """The reader of what the writer of `config` stored; relative paths against `base`."""
    return registered(config).reader(config if base is None else config.resolved(base))


def _sink_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in _BY_TYPE else None  # a list or mapping is no type


if TYPE_CHECKING:
    SinkConfig = SinkSettings
else:
    SinkConfig = Annotated[
        Union[tuple(Annotated[sink.settings, Tag(sink.type)] for sink in SINKS)],  # noqa: UP007
        Discriminator(
            _sink_tag,
            custom_error_type="sink_type",
            custom_error_message=f"type must be one of: {', '.join(SINK_TYPES)}",
        ),
    ]


class _SinkSection(BaseModel):
    """A file's `sink:` section; the rest of the file (sources, spool) is not this reader's business."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sink: SinkConfig


@dataclass(frozen=True)
class LoadedSink:
    """A `sink:` section as read from a file: its settings (relative paths made absolute against
    the file's folder, secrets as SecretStr), that folder, and the values `${ENV}` put in secrets."""

    config: SinkSettings
    base: Path
    secrets: frozenset[str]


def read_sink(path: str | Path, environ: Mapping[str, str] | None = None) -> LoadedSink:
    """The `sink:` section of a connector config, or of a file holding only `sink:`.

    `${ENV}` is substituted in that section only (the sources' variables need not be set to
    read where the points go). ConfigError, one line naming the file, on any problem: its
    `error` is the pydantic error when the section is invalid (locations start at `sink`),
    its `path` the field of an unset variable. Hide `secrets` in the logs once read.
    """
    # connectors.config imports this package for ConnectorConfig.sink: import it when called
    from connectors.config import ConfigError, read_mapping

    file = Path(path)
    data = read_mapping(file, "sink")
    if not isinstance(data.get("sink"), dict):
        raise ConfigError(f"{file}: sink: required section missing (a mapping with `type:`)")
    secrets: set[str] = set()
    try:
        section = substitute(data["sink"], os.environ if environ is None else environ, secrets, "sink")
    except EnvError as exc:
        field = repr(exc.path) if "\n" in exc.path else exc.path  # the message stays one line
        raise ConfigError(f"{file}: {field}: {exc.message}", path=exc.path) from None
    try:
        config = _SinkSection.model_validate({"sink": section}).sink
    except ValidationError as exc:
        raise ConfigError(f"{file}: invalid sink", error=exc) from None
    base = file.resolve().parent
    return LoadedSink(config=config.resolved(base), base=base, secrets=frozenset(secrets))

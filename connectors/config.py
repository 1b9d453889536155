"""The connector's configuration: one YAML file, validated before anything connects.

    sink: {type: influxdb1, url: http://127.0.0.1:8086, database: plant}
    spool: {path: spool/, max_bytes: 1GB}
    opcua:
      - endpoint: opc.tcp://127.0.0.1:4840
        nodes: ["Objects/*/*/*"]
    mqtt:
      - url: mqtt://127.0.0.1:1883
        topics: [{filter: "factory/+/+/+", format: json}]

`${ENV_VAR}` in any string is replaced from the environment before validation (see
`connectors.common.secrets`). Relative paths are relative to the config file's folder.
Without a `sink`, points go to the embedded historian `historian.duckdb`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.common.secrets import EnvError, substitute
from connectors.mqtt.config import MqttSource
from connectors.opcua.config import OpcUaSource
from connectors.sinks.config import SINK_TYPES, EmbeddedSink, SinkConfig
from foundation import yamlfile
from foundation.durations import Duration, Size
from foundation.errors import InputError, validation_message
from foundation.models import Strict


class SpoolConfig(Strict):
    """The on-disk store-and-forward journal (see connectors.common.spool)."""

    path: str = Field(default="spool", min_length=1)
    max_bytes: Size = Field(default=1 << 30, ge=1 << 16)
    fsync: bool = True
    fsync_interval: Duration = Field(default=1.0, gt=0)
    commit_interval: Duration = Field(default=0.02, gt=0, le=5)


class HealthConfig(Strict):
    interval: Duration = Field(default=10.0, gt=0)
    measurement: str = Field(default="connector_health", min_length=1)


class ConnectorConfig(Strict):
    name: str = Field(default="fabbrica", min_length=1)
    sink: SinkConfig = Field(default_factory=lambda: EmbeddedSink(type="embedded"))
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    shutdown_timeout: Duration = Field(default=10.0, ge=0)
    opcua: list[OpcUaSource] = Field(default_factory=list)
    mqtt: list[MqttSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_source(self) -> ConnectorConfig:
        if not self.opcua and not self.mqtt:
            raise ValueError("no source: give at least one opcua or mqtt entry")
        return self


class ConfigError(InputError):
    """An invalid connector (or sink) config file, one line naming file and field.

    `error` is the pydantic error when there is one, `path` the field of an unset variable.
    """

    def __init__(self, message: str, error: ValidationError | None = None, path: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.path = path


class LoadedConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config: ConnectorConfig
    base: Path
    secrets: frozenset[str]


def read_config(path: str | Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, substitute and validate a config file; ConfigError (one line) on any problem."""
    file = Path(path)
    data = read_mapping(file, "sink, spool, opcua, mqtt")
    return config_from_dict(data, str(file), environ if environ is not None else os.environ, file.parent)


def read_mapping(file: Path, keys: str) -> dict[str, Any]:
    """The YAML mapping in `file` (ConfigError, one line, if it cannot be read or is not one)."""
    return yamlfile.read_mapping(file, ConfigError, f"a mapping ({keys})")


def config_from_dict(
    data: dict[str, Any], source: str, environ: Mapping[str, str], base: Path | None = None
) -> LoadedConfig:
    secrets: set[str] = set()
    try:
        data = substitute(data, environ, secrets)
    except EnvError as exc:
        where = repr(exc.path) if "\n" in exc.path else exc.path  # the message stays one line
        raise ConfigError(f"{source}: {where}: {exc.message}", path=exc.path) from None
    try:
        config = ConnectorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(source, exc, SKIPPED_LOCATIONS), error=exc) from None
    return LoadedConfig(config=config, base=(base or Path.cwd()).resolve(), secrets=frozenset(secrets))


SKIPPED_LOCATIONS = frozenset(SINK_TYPES)  # union tags, left out of a field path

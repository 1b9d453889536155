"""Configuration of the three sinks; `type` chooses one.

sink: {type: influxdb1, url: http://127.0.0.1:8086, database: plant}
sink: {type: influxdb2, url: http://127.0.0.1:8086, token: ${INFLUX_TOKEN}, org: acme, bucket: plant}
sink: {type: embedded, path: historian.duckdb}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag

from connectors.common.units import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Batching(_Strict):
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    flush_interval: Duration = Field(default=1.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    retry_initial: Duration = Field(default=0.5, gt=0)
    retry_max: Duration = Field(default=30.0, gt=0)


class InfluxDB1Sink(_Batching):
    """InfluxDB 1.x through its v1 HTTP API (`/write?db=...&precision=ns`)."""

    type: Literal["influxdb1"]
    url: AnyHttpUrl
    database: str = Field(min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    create_database: bool = True
    gzip: bool = False


class InfluxDB2Sink(_Batching):
    """InfluxDB 2.x or 3.x (or any server with InfluxDB's v2 write API) through influxdb-client."""

    type: Literal["influxdb2"]
    url: AnyHttpUrl
    token: SecretStr = SecretStr("")
    org: str = Field(default="", description="organisation (name or id)")
    bucket: str = Field(min_length=1)
    gzip: bool = False


class EmbeddedSink(_Batching):
    """The embedded historian: a DuckDB file (relative paths are relative to the config file)."""

    type: Literal["embedded"]
    path: str = Field(default="historian.duckdb", min_length=1)


SINK_TYPES = ("influxdb1", "influxdb2", "embedded")


def _sink_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in SINK_TYPES else None


SinkConfig = Annotated[
    Annotated[InfluxDB1Sink, Tag("influxdb1")]
    | Annotated[InfluxDB2Sink, Tag("influxdb2")]
    | Annotated[EmbeddedSink, Tag("embedded")],
    Discriminator(
        _sink_tag,
        custom_error_type="sink_type",
        custom_error_message=f"type must be one of: {', '.join(SINK_TYPES)}",
    ),
]

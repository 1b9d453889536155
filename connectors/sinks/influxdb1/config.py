"""The settings of an InfluxDB 1.x sink.

sink: {type: influxdb1, url: http://127.0.0.1:8086, database: plant,
       username: connector, password: ${INFLUX_PASSWORD}}
"""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from connectors.sinks.base import SinkSettings


class InfluxDB1Sink(SinkSettings):
    """InfluxDB 1.x through its v1 HTTP API (`/write?db=...&precision=ns`)."""

    type: Literal["influxdb1"]
    url: AnyHttpUrl
    database: str = Field(min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    create_database: bool = True
    gzip: bool = False

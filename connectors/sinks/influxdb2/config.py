"""The settings of an InfluxDB 2.x/3.x sink.

sink: {type: influxdb2, url: http://127.0.0.1:8086, token: ${INFLUX_TOKEN}, org: acme, bucket: plant}
"""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from connectors.sinks.base import SinkSettings


class InfluxDB2Sink(SinkSettings):
    """InfluxDB 2.x or 3.x (or any server with InfluxDB's v2 write API) through influxdb-client."""

    type: Literal["influxdb2"]
    url: AnyHttpUrl
    token: SecretStr = SecretStr("")
    org: str = Field(default="", description="organisation (name or id)")
    bucket: str = Field(min_length=1)
    gzip: bool = False

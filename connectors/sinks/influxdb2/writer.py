"""InfluxDB 2.x and 3.x (and servers speaking the same v2 write API) through influxdb-client.

The batch goes as line protocol with nanosecond precision; `gzip: true` compresses it.
A 400/422 answer means bad points (rejected, not retried); anything else is retried.
"""

from __future__ import annotations

import logging

from aiohttp import ClientError
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from connectors.common.ratelog import RateLimitedLog
from connectors.sinks.base import SinkUnavailable
from connectors.sinks.influxdb2.config import InfluxDB2Sink

log = logging.getLogger(__name__)


class InfluxDB2:
    def __init__(self, config: InfluxDB2Sink) -> None:
        self.config = config
        self.name = f"influxdb2 {config.url}"
        self._client: InfluxDBClientAsync | None = None
        self._warn = RateLimitedLog(log)

    async def open(self) -> None:
        self._client = InfluxDBClientAsync(
            url=str(self.config.url).rstrip("/"),
            token=self.config.token.get_secret_value(),
            org=self.config.org,
            timeout=int(self.config.timeout * 1000),
            enable_gzip=self.config.gzip,
        )

    async def write(self, data: bytes, count: int) -> int:
        if self._client is None:
            await self.open()
        assert self._client is not None
        try:
            await self._client.write_api().write(
                bucket=self.config.bucket, org=self.config.org, record=data, write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            if exc.status in (400, 422):
                self._warn.warning("reject", "%s: refused a batch of %d: %s", self.name, count, exc.body)
                return count
            raise SinkUnavailable(f"{self.name}: HTTP {exc.status}: {exc.reason}") from None
        except (ClientError, TimeoutError, OSError) as exc:
            raise SinkUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None
        return 0

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

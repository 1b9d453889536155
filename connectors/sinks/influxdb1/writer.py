"""InfluxDB 1.x: batches of line protocol POSTed to `/write?db=...&precision=ns` with aiohttp.

Many factories still run 1.8. The database is created on open unless `create_database: false`.
A 400 answer ("partial write", "field type conflict") means bad points: they are counted as
rejected and not retried. Any other failure leaves the batch in the spool for a retry.
"""

from __future__ import annotations

import gzip
import logging
import re

import aiohttp

from connectors.common.ratelog import RateLimitedLog
from connectors.sinks.base import SinkUnavailable
from connectors.sinks.influxdb1.config import InfluxDB1Sink

log = logging.getLogger(__name__)
_DROPPED = re.compile(r"dropped=(\d+)")


class InfluxDB1:
    def __init__(self, config: InfluxDB1Sink) -> None:
        self.config = config
        self.name = f"influxdb1 {config.url}"
        self._base = str(config.url).rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._warn = RateLimitedLog(log)

    def _auth(self) -> aiohttp.BasicAuth | None:
        if self.config.username is None:
            return None
        password = self.config.password.get_secret_value() if self.config.password else ""
        return aiohttp.BasicAuth(self.config.username, password)

    async def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        self._session = aiohttp.ClientSession(timeout=timeout, auth=self._auth())
        if self.config.create_database:
            await self._create_database()

    async def _create_database(self) -> None:
        assert self._session is not None
        name = self.config.database.replace('"', '\\"')
        try:
            async with self._session.post(
                f"{self._base}/query", data={"q": f'CREATE DATABASE "{name}"'}
            ) as answer:
                if answer.status >= 300:
                    self._warn.warning("create", "%s: CREATE DATABASE answered %d", self.name, answer.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None

    async def write(self, data: bytes, count: int) -> int:
        if self._session is None:
            await self.open()
        assert self._session is not None
        params = {"db": self.config.database, "precision": "ns"}
        if self.config.retention_policy:
            params["rp"] = self.config.retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        body = data
        if self.config.gzip:
            body = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            async with self._session.post(
                f"{self._base}/write", params=params, data=body, headers=headers
            ) as answer:
                text = await answer.text()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if status == 404 and "database not found" in text and self.config.create_database:
            await self._create_database()
            raise SinkUnavailable(f"{self.name}: database {self.config.database!r} was missing; created")
        if 200 <= status < 300:
            return 0
        if status == 400:
            match = _DROPPED.search(text)
            rejected = int(match.group(1)) if match else count
            self._warn.warning(
                "reject", "%s: refused %d point(s): %s", self.name, rejected, text.strip()[:300]
            )
            return rejected
        raise SinkUnavailable(f"{self.name}: HTTP {status}: {text.strip()[:200]}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

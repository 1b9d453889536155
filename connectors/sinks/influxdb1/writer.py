"""InfluxDB 1.x: batches of line protocol POSTed to `/write?db=...&precision=ns` with aiohttp.

Many factories still run 1.8. The database is created on open unless `create_database: false`;
a write that still finds it missing (dropped meanwhile, or a CREATE the server did not keep)
creates it again and is tried once more before the batch goes back to the spool. A 400 answer
("partial write", "field type conflict") means bad points: they are counted as rejected and not
retried. Any other failure leaves the batch in the spool for a retry.
"""

from __future__ import annotations

import gzip
import json
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
        """CREATE DATABASE; InfluxDB answers 200 even when it fails, with the error in the body."""
        assert self._session is not None
        name = self.config.database.replace('"', '\\"')
        try:
            async with self._session.post(
                f"{self._base}/query", data={"q": f'CREATE DATABASE "{name}"'}
            ) as answer:
                status, text = answer.status, await answer.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None
        error = _query_error(text) if status < 300 else text.strip()[:200]
        if error:
            self._warn.warning("create", "%s: CREATE DATABASE answered %d: %s", self.name, status, error)

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        assert self._session is not None
        params = {"db": self.config.database, "precision": "ns"}
        if self.config.retention_policy:
            params["rp"] = self.config.retention_policy
        try:
            async with self._session.post(
                f"{self._base}/write", params=params, data=body, headers=headers
            ) as answer:
                return answer.status, await answer.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from None

    async def write(self, data: bytes, count: int) -> int:
        if self._session is None:
            await self.open()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        body = data
        if self.config.gzip:
            body = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        status, text = await self._post(body, headers)
        if _database_missing(status, text) and self.config.create_database:
            await self._create_database()
            status, text = await self._post(body, headers)
            if _database_missing(status, text):
                raise SinkUnavailable(f"{self.name}: database {self.config.database!r} is missing")
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


def _database_missing(status: int, text: str) -> bool:
    return status == 404 and "database not found" in text


def _query_error(text: str) -> str:
    """The first error in a /query answer's results, or "" when every statement succeeded."""
    try:
        results = json.loads(text).get("results", [])
    except (ValueError, AttributeError):
        return text.strip()[:200]
    return next((str(result["error"]) for result in results if "error" in result), "")

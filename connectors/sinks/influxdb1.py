"""InfluxDB 1.x: batches of line protocol POSTed to `/write?db=...&precision=ns` with aiohttp.

Many factories still run 1.8. The database is created on open unless `create_database: false`.
A 400 answer ("partial write", "field type conflict") means bad points: they are counted as
rejected and not retried. Any other failure leaves the batch in the spool for a retry.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from typing import TYPE_CHECKING, Any

import aiohttp

from connectors.common.ratelog import RateLimitedLog
from connectors.sinks.base import SinkUnavailable
from connectors.sinks.config import InfluxDB1Sink

if TYPE_CHECKING:
    import pandas as pd

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


class QueryError(RuntimeError):
    """An InfluxQL query that did not run: the server is unreachable, refused it or failed it."""


def authorization(username: str | None, password: str | None = None, token: str | None = None) -> str | None:
    """The `Authorization` header for a query: Basic for a 1.x user, `Token` for 2.x/3.x, else None.

    Credentials go in a header, never in the URL, where servers and proxies log them.
    """
    if token:
        return f"Token {token}"
    if username:
        return aiohttp.BasicAuth(username, password or "").encode()
    return None


async def influxql(
    url: str, database: str, query: str, authorization: str | None = None
) -> list[dict[str, Any]]:
    """Run an InfluxQL query (epoch=ns) and return its series as plain dicts; QueryError if it fails."""
    headers = {"Authorization": authorization} if authorization else {}
    where = f"{url.rstrip('/')}/query"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.get(where, params={"db": database, "q": query, "epoch": "ns"}, headers=headers) as answer,
        ):
            if answer.status >= 300:
                detail = _error_text(await answer.text())
                raise QueryError(f"{where}: HTTP {answer.status}" + (f": {detail}" if detail else ""))
            payload = await answer.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise QueryError(f"{where}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    series: list[dict[str, Any]] = []
    for result in payload.get("results", []) if isinstance(payload, dict) else []:
        if "error" in result:
            raise QueryError(f"{where}: {result['error']}")
        series.extend(result.get("series", []))
    return series


def _error_text(body: str) -> str:
    """The `error` of InfluxDB's JSON answer, or the answer itself, on one short line."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    text = str(decoded["error"]) if isinstance(decoded, dict) and "error" in decoded else body
    return " ".join(text.split())[:200]


async def query(
    url: str,
    database: str,
    measurement: str,
    start: int,
    end: int,
    tags: dict[str, str] | None = None,
    authorization: str | None = None,
) -> pd.DataFrame:
    """Points of `measurement` with start <= time < end (epoch ns), one row per timestamp and series:
    columns `time` (UTC), the tags, then the fields; the same shape as the embedded historian's."""
    import pandas as pd

    where = [f"time >= {int(start)}", f"time < {int(end)}"]
    for key, value in (tags or {}).items():
        quoted_key = key.replace('"', "")
        quoted_value = value.replace("'", "\\'")
        where.append(f"\"{quoted_key}\" = '{quoted_value}'")
    name = measurement.replace('"', '\\"')
    statement = f'SELECT * FROM "{name}" WHERE {" AND ".join(where)} GROUP BY *'
    series = await influxql(url, database, statement, authorization)
    frames = []
    for item in series:
        frame = pd.DataFrame(item.get("values", []), columns=item["columns"])
        for key, value in (item.get("tags") or {}).items():
            frame[key] = value
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]")})
    frame = pd.concat(frames, ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"], unit="ns", utc=True)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)

"""Reading back through InfluxQL: InfluxDB 1.x's `/query`, and the v1-compatible `/query` of 2.x/3.x.

Both InfluxDB sinks read the same way; only the database (1.x) or bucket (2.x/3.x) and the
credentials differ: Basic for a 1.x user, `Token` for 2.x/3.x, always in the Authorization
header, never in the URL, where servers and proxies log them.

    reader = InfluxQLReader("http://127.0.0.1:8086", "plant", authorization("connector", "pw"))
    frame = await reader.query("machine", start_ns, end_ns)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from connectors.sinks.base import QueryError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["InfluxQLReader", "QueryError", "authorization", "influxql", "query"]


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
    tags: Mapping[str, str] | None = None,
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


class InfluxQLReader:
    """A sink's reader through InfluxQL; `probe`: `check` asks the server for its databases
    (InfluxDB 1.x answers that for any valid user; the v1 API of 2.x/3.x is left unprobed)."""

    def __init__(self, url: str, database: str, authorization: str | None, probe: bool = True) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.name = f"influxql {self.url} {database}"
        self._authorization = authorization
        self._probe = probe

    async def check(self) -> None:
        if self._probe:
            await influxql(self.url, "", "SHOW DATABASES", self._authorization)

    async def query(
        self, measurement: str, start: int, end: int, tags: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        return await query(self.url, self.database, measurement, start, end, tags, self._authorization)

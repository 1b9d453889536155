"""Reading the embedded historian back: the file opened read-only for each query, in a worker thread.

Opening per query lets a connector write the file between two reads (DuckDB admits one
writing process at a time); a file another process holds, or one that is no DuckDB file,
is a QueryError naming the file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from connectors.sinks.base import QueryError
from connectors.sinks.embedded.historian import Historian


class HistorianReader:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"embedded {self.path}"

    async def check(self) -> None:
        """Nothing to try before a run: the file appears with the first point written."""

    async def query(
        self, measurement: str, start: int, end: int, tags: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        return await asyncio.to_thread(self._query, measurement, start, end, dict(tags or {}))

    def _query(self, measurement: str, start: int, end: int, tags: dict[str, str]) -> pd.DataFrame:
        if not self.path.exists():
            raise QueryError(f"sink.path: no such file: {self.path}")
        try:
            historian = Historian(self.path, read_only=True)
        except duckdb.Error as exc:  # not a DuckDB file, or one a running connector holds
            reason = " ".join(str(exc).split())
            raise QueryError(f"cannot open the historian {self.path}: {reason}") from None
        try:
            return historian.query(measurement, start, end, tags)
        finally:
            historian.close()

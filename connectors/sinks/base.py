"""What every sink is: settings, a writer (open, write a batch of line protocol, close) and a reader.

`write` returns the number of points the sink refused as bad data (those are counted and
dropped; retrying them cannot help). A sink that cannot be reached raises `SinkUnavailable`:
the batch stays in the spool and is retried with backoff.

A reader gives back what the writer stored, in the shape the twin's calibration reads: one
row per timestamp and series, columns `time` (UTC), the tags, then the fields. It raises
`QueryError` when the data cannot be read (server down, credentials refused, file missing).

Each sink's settings derive from `SinkSettings`; `resolved(base)` is the hook by which a
sink makes its relative paths absolute against the config file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

from pydantic import Field

from foundation.durations import Duration
from foundation.models import Strict

if TYPE_CHECKING:
    import pandas as pd


class SinkUnavailable(Exception):
    """The sink could not take the batch now (down, overloaded, timing out); retry later."""


class QueryError(RuntimeError):
    """A read that did not run: the sink is unreachable, refused the credentials or failed the query."""


class SinkSettings(Strict):
    """What every sink's settings hold: its `type` and how the pipeline batches and retries."""

    type: str
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    flush_interval: Duration = Field(default=1.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    retry_initial: Duration = Field(default=0.5, gt=0)
    retry_max: Duration = Field(default=30.0, gt=0)

    def resolved(self, base: Path) -> Self:
        """These settings with relative paths made absolute against `base` (a sink with none: as is)."""
        return self


class Sink(Protocol):
    name: str

    async def open(self) -> None: ...

    async def write(self, data: bytes, count: int) -> int: ...

    async def close(self) -> None: ...


class SinkReader(Protocol):
    name: str

    async def check(self) -> None:
        """Before a long run: QueryError at once if the sink is unreachable or refuses the
        credentials (a sink that cannot tell before any data is written does nothing)."""
        ...

    async def query(
        self, measurement: str, start: int, end: int, tags: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """Points of `measurement` with start <= time < end (epoch ns), filtered by tag values."""
        ...

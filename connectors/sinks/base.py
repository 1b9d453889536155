"""What every sink does: open, write a batch of line protocol, close.

`write` returns the number of points the sink refused as bad data (those are counted and
dropped; retrying them cannot help). A sink that cannot be reached raises `SinkUnavailable`:
the batch stays in the spool and is retried with backoff.
"""

from __future__ import annotations

from typing import Protocol


class SinkUnavailable(Exception):
    """The sink could not take the batch now (down, overloaded, timing out); retry later."""


class Sink(Protocol):
    name: str

    async def open(self) -> None: ...

    async def write(self, data: bytes, count: int) -> int: ...

    async def close(self) -> None: ...

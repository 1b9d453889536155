"""The embedded historian as a sink: each batch inserted in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.sinks.embedded.config import EmbeddedSink
from connectors.sinks.embedded.historian import Historian


class Embedded:
    """The historian as a sink: writes happen in a worker thread, one batch at a time."""

    def __init__(self, config: EmbeddedSink, base: Path | None = None) -> None:
        self.path = Path((config if base is None else config.resolved(base)).path)
        self.name = f"embedded {self.path}"
        self.historian: Historian | None = None

    async def open(self) -> None:
        self.historian = await asyncio.to_thread(Historian, self.path)

    async def write(self, data: bytes, count: int) -> int:
        if self.historian is None:
            await self.open()
        assert self.historian is not None
        return await asyncio.to_thread(self.historian.insert_lines, data)

    async def close(self) -> None:
        if self.historian is not None:
            await asyncio.to_thread(self.historian.close)
            self.historian = None

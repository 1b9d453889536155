"""The data path: sources submit points, the spool keeps them, the writer hands them to the sink.

    sources --submit()--> buffer --commit (every ~20 ms)--> spool on disk --writer--> sink
                                      \\-- then acknowledge the sources (MQTT PUBACK)

A source's message is acknowledged only once its points are written to the spool file, so a
kill -9 loses nothing the broker does not send again; the spool is fsync'd every
`fsync_interval` in a worker thread, which bounds what a power loss could take. The writer
sends batches of `batch_size` points, or whatever is there after `flush_interval`, retrying
with exponential backoff and jitter while the sink is down; the spool grows meanwhile and is
replayed in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from connectors.common.backoff import Backoff, sleep_or_stop
from connectors.common.health import Health
from connectors.common.points import BadPoint, Point, to_line
from connectors.common.ratelog import RateLimitedLog
from connectors.common.spool import Spool
from connectors.config import ConnectorConfig
from connectors.sinks.base import Sink
from connectors.sinks.registry import open_writer

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, config: ConnectorConfig, base: Path, sink: Sink | None = None) -> None:
        self.config = config
        spool_path = Path(config.spool.path)
        self.spool = Spool(
            spool_path if spool_path.is_absolute() else base / spool_path,
            max_bytes=config.spool.max_bytes,
            fsync=config.spool.fsync,
        )
        self.sink = sink or open_writer(config.sink, base)
        self.health = Health(spooled=self.spool.pending)
        self._lines: list[str] = []
        self._count = 0
        self._acks: list[Callable[[], None]] = []
        self._wake_writer = asyncio.Event()
        self._wake_committer = asyncio.Event()
        self._appended: deque[tuple[float, int]] = deque()  # (wall time, points) per commit, oldest first
        self._appended_total = self.spool.pending
        if self.spool.pending:
            self._appended.append((time.time(), self.spool.pending))
        self._bad = RateLimitedLog(log)
        self._sink_down = False
        self._unsynced = False

    # -- what sources call -------------------------------------------------------------------

    def submit(self, points: list[Point], ack: Callable[[], None] | None = None) -> None:
        """Take points in; `ack` runs once they are safe in the spool."""
        accepted = 0
        for point in points:
            try:
                line = to_line(point)
            except (BadPoint, TypeError, ValueError) as exc:
                self.reject(f"bad point for {point.measurement}: {exc}")
                continue
            self._lines.append(line)
            accepted += 1
        self._count += accepted
        self.health.points_in += accepted
        if ack is not None:
            self._acks.append(ack)
        if self._count >= 10_000 or (ack is not None and len(self._acks) >= 1000):
            self._wake_committer.set()

    def reject(self, reason: str, count: int = 1) -> None:
        """Count bad input and log it at a limited rate; never raise."""
        self.health.rejected += count
        self._bad.warning(reason.split(":", 1)[0], "rejected: %s", reason)

    # -- committer: buffer -> spool, then acknowledge -------------------------------------------

    def commit(self) -> None:
        if self._lines:
            data = ("\n".join(self._lines) + "\n").encode()
            count = self._count
            self._lines, self._count = [], 0
            self.spool.append(data, count)
            self._unsynced = True
            now = time.time()
            if self._appended and now - self._appended[-1][0] < 1.0:  # one entry per second at most
                self._appended[-1] = (self._appended[-1][0], self._appended[-1][1] + count)
            else:
                self._appended.append((now, count))
            self._appended_total += count
            self._wake_writer.set()
        self.health.dropped = self.spool.dropped
        self._trim_appended()
        acks, self._acks = self._acks, []
        for ack in acks:
            try:
                ack()
            except Exception as exc:  # a source that went away cannot be acknowledged; it resends
                log.debug("ack failed: %s", exc)

    async def _committer(self, stop: asyncio.Event) -> None:
        interval = self.config.spool.commit_interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_committer.wait(), timeout=interval)
            self._wake_committer.clear()
            self.commit()

    async def _syncer(self, stop: asyncio.Event) -> None:
        """fsync the spool every `fsync_interval` in a worker thread, off the event loop.

        Appends reach the operating system at once (a kill -9 loses nothing); this bounds what
        an OS crash or power loss could take.
        """
        while not await sleep_or_stop(self.config.spool.fsync_interval, stop):
            if self._unsynced:
                self._unsynced = False
                await asyncio.to_thread(self.spool.sync)

    # -- writer: spool -> sink -------------------------------------------------------------------

    async def _writer(self, stop: asyncio.Event) -> None:
        sink_config = self.config.sink
        backoff = Backoff(initial=sink_config.retry_initial, maximum=sink_config.retry_max)
        last_write = time.monotonic()
        while not stop.is_set():
            pending = self.spool.pending
            if pending < sink_config.batch_size:
                remaining = sink_config.flush_interval - (time.monotonic() - last_write)
                if not pending or remaining > 0:
                    self._wake_writer.clear()
                    timeout = remaining if pending else sink_config.flush_interval
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake_writer.wait(), timeout=max(timeout, 0.001))
                    continue
            if not await self.write_once():
                if await sleep_or_stop(backoff.next_delay(), stop):
                    return
                continue
            backoff.reset()
            last_write = time.monotonic()

    async def write_once(self) -> bool:
        """Send one batch from the spool; False when the sink is unavailable."""
        data, count, position = self.spool.read(self.config.sink.batch_size)
        if not count:
            self.spool.pending = 0  # nothing readable is left, whatever the count said
            return True
        try:
            rejected = await self.sink.write(data, count)
        except Exception as exc:  # SinkUnavailable, or anything unforeseen: keep the batch, retry
            if not self._sink_down:
                log.warning("%s unavailable, spooling: %s", self.sink.name, exc or type(exc).__name__)
            self._sink_down = True
            self._update_lag()
            return False
        if self._sink_down:
            log.warning("%s is back; replaying %d spooled points", self.sink.name, self.spool.pending)
            self.health.reconnects += 1
            self._sink_down = False
        self.spool.commit(position, count)
        self.health.points_written += count - rejected
        self.health.rejected += rejected
        self._consume_appended(count)
        return True

    def _consume_appended(self, count: int) -> None:
        while count and self._appended:
            stamp, points = self._appended[0]
            if points <= count:
                count -= points
                self._appended_total -= points
                self._appended.popleft()
            else:
                self._appended[0] = (stamp, points - count)
                self._appended_total -= count
                count = 0
        self._update_lag()

    def _trim_appended(self) -> None:
        excess = self._appended_total - self.spool.pending
        if excess > 0:
            self._consume_appended(excess)
        else:
            self._update_lag()

    def _update_lag(self) -> None:
        self.health.spooled = self.spool.pending
        self.health.lag_s = max(0.0, time.time() - self._appended[0][0]) if self._appended else 0.0

    # -- health ---------------------------------------------------------------------------------

    def health_point(self) -> Point:
        self._update_lag()
        self.health.dropped = self.spool.dropped
        return self.health.point(self.config.name, self.config.health.measurement)

    async def _health_loop(self, stop: asyncio.Event) -> None:
        while not await sleep_or_stop(self.config.health.interval, stop):
            point = self.health_point()
            self._lines.append(to_line(point))
            self._count += 1

    # -- life cycle -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, sources_done: asyncio.Event) -> None:
        """Run committer, writer and health until `stop`; after `sources_done`, flush everything."""
        try:
            await self.sink.open()
        except Exception as exc:  # down, or (embedded) the file is locked by another process
            log.warning("%s unavailable at start, spooling: %s", self.sink.name, exc)
            self._sink_down = True
        writer_stop = asyncio.Event()
        tasks = [
            asyncio.create_task(self._committer(writer_stop), name="committer"),
            asyncio.create_task(self._writer(writer_stop), name="writer"),
            asyncio.create_task(self._health_loop(writer_stop), name="health"),
            asyncio.create_task(self._syncer(writer_stop), name="fsync"),
        ]
        try:
            await stop.wait()
            await sources_done.wait()
        finally:
            writer_stop.set()
            self._wake_committer.set()
            self._wake_writer.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._flush()

    async def _flush(self) -> None:
        """Commit what is buffered, then write the spool out within `shutdown_timeout`;
        last, one health point with the final counts."""
        self.commit()
        deadline = time.monotonic() + self.config.shutdown_timeout
        backoff = Backoff(initial=0.2, maximum=2.0)
        for final in (False, True):
            if final:
                self._lines.append(to_line(self.health_point()))
                self._count += 1
                self.commit()
            while self.spool.pending and time.monotonic() < deadline:
                if not await self.write_once():
                    await asyncio.sleep(min(backoff.next_delay(), max(0.0, deadline - time.monotonic())))
        if self.spool.pending:
            log.warning("%d points stay in the spool for the next start", self.spool.pending)
        self.spool.close()
        try:
            await self.sink.close()
        except Exception as exc:
            log.debug("closing %s: %s", self.sink.name, exc)

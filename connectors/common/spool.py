"""The store-and-forward spool: an on-disk journal of points that survives kill -9.

Every point a source produces is appended here (as line protocol) before its source is
acknowledged; the sink writer reads from the spool's cursor in order and moves the cursor
only after the sink accepted the batch. While the database is down the journal grows; when
it comes back the backlog is replayed oldest first.

On disk, under `path/`:
- `segments/<20-digit number>.lp`: append-only segment files, rolled at `segment_bytes`;
- `cursor`: the segment number and byte offset of the first point not yet written.

A crash can leave a torn last line; it is cut off at the next start. A stale cursor (moved
in memory but not on disk) only replays points the sink already has, which overwrite
themselves (same series and timestamp). When the segments exceed `max_bytes` the oldest
segment is deleted even if unsent: the points in it are counted as dropped and logged.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from connectors.common.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
_READ_CHUNK = 4 << 20


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


class Spool:
    def __init__(
        self, path: str | Path, max_bytes: int = 1 << 30, segment_bytes: int | None = None, fsync: bool = True
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 << 10, min(64 << 20, max_bytes // 8))
        self.fsync = fsync
        self.dropped = 0
        self._warn = RateLimitedLog(log, interval=30.0)
        self._dir = self.path / "segments"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._sizes: dict[int, int] = {}
        for file in sorted(self._dir.glob("*.lp")):
            self._sizes[int(file.stem)] = file.stat().st_size
        if not self._sizes:
            self._sizes[1] = 0
            self._segment_file(1).touch()
        self._head = max(self._sizes)
        self._repair_tail()
        self._fd = os.open(self._segment_file(self._head), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._cursor = self._load_cursor()
        self.pending = self._count_pending()
        # the batch the writer read last (cursor, end) and how many of its points a full spool
        # deleted meanwhile: if the sink then takes the batch they were not lost after all
        self._in_flight: tuple[Position, Position] | None = None
        self._in_flight_dropped = 0

    # -- appending ---------------------------------------------------------------------------

    def append(self, data: bytes, count: int) -> None:
        """Append `count` points (complete lines) and make them survive a kill of the process."""
        if not data:
            return
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._sizes[self._head] += len(data)
        self.pending += count
        if self._sizes[self._head] >= self.segment_bytes:
            self._roll()
        self._enforce_limit()

    def sync(self) -> None:
        """Make appended points survive a power loss too (fsync of the open segment).

        Safe to call from a worker thread: a segment rolled meanwhile was synced when rolled.
        """
        if self.fsync:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.debug("spool: fsync: %s", exc)

    def _roll(self) -> None:
        self.sync()
        os.close(self._fd)
        self._head += 1
        self._sizes[self._head] = 0
        self._fd = os.open(self._segment_file(self._head), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _fsync_dir(self._dir)

    def _enforce_limit(self) -> None:
        while sum(self._sizes.values()) > self.max_bytes and len(self._sizes) > 1:
            oldest = min(self._sizes)
            offset = self._cursor.offset if self._cursor.segment == oldest else 0
            lost = 0 if self._cursor.segment > oldest else _count_lines(self._segment_file(oldest), offset)
            if lost and self._in_flight is not None:
                self._in_flight_dropped += self._in_flight_lines(oldest, offset)
            self._delete(oldest)
            if self._cursor.segment <= oldest:
                self._cursor = Position(min(self._sizes), 0)
                self._save_cursor()
            if lost:
                self.dropped += lost
                self.pending = max(0, self.pending - lost)
                self._warn.warning(
                    "full",
                    "spool full (max_bytes=%d): dropped the %d oldest unsent points (%d dropped in all)",
                    self.max_bytes,
                    lost,
                    self.dropped,
                )

    # -- reading -----------------------------------------------------------------------------

    def read(self, max_points: int) -> tuple[bytes, int, Position]:
        """Up to `max_points` unsent lines from the cursor on: (data, count, end position)."""
        position = self._cursor
        chunks: list[bytes] = []
        count = 0
        while count < max_points and position.segment in self._sizes:
            size = self._sizes[position.segment]
            if position.offset >= size:
                if position.segment == self._head:
                    break
                position = Position(position.segment + 1, 0)
                continue
            with open(self._segment_file(position.segment), "rb") as file:
                file.seek(position.offset)
                data = file.read(min(_READ_CHUNK, size - position.offset))
            end = _nth_newline(data, max_points - count)
            if end < 0:
                break
            chunk = data[: end + 1]
            count += chunk.count(b"\n")
            chunks.append(chunk)
            position = Position(position.segment, position.offset + len(chunk))
        self._in_flight = (self._cursor, position) if count else None
        self._in_flight_dropped = 0
        return b"".join(chunks), count, position

    def _in_flight_lines(self, segment: int, offset: int) -> int:
        """Lines of the batch in flight at or after `offset` in `segment` (about to be deleted)."""
        assert self._in_flight is not None
        start, end = self._in_flight
        if start.segment > segment or end.segment < segment:
            return 0
        begin = max(offset, start.offset if start.segment == segment else 0)
        stop = end.offset if end.segment == segment else self._sizes[segment]
        return _count_lines(self._segment_file(segment), begin, stop)

    def commit(self, position: Position, count: int) -> None:
        """The sink has the points up to `position`: move the cursor, delete finished segments."""
        delivered = 0
        if self._in_flight is not None and self._in_flight[1] == position:
            delivered = self._in_flight_dropped  # counted as dropped while in flight, yet written
            self.dropped -= delivered
        self._in_flight, self._in_flight_dropped = None, 0
        if position <= self._cursor:
            return
        self._cursor = position
        self.pending = max(0, self.pending - (count - delivered))
        self._save_cursor()
        for number in sorted(self._sizes):
            if number < position.segment and number != self._head:
                self._delete(number)

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    def close(self) -> None:
        self.sync()
        os.close(self._fd)

    # -- files -------------------------------------------------------------------------------

    def _segment_file(self, number: int) -> Path:
        return self._dir / f"{number:020d}.lp"

    def _delete(self, number: int) -> None:
        self._segment_file(number).unlink(missing_ok=True)
        del self._sizes[number]

    def _repair_tail(self) -> None:
        file = self._segment_file(self._head)
        size = self._sizes[self._head]
        if size == 0:
            return
        with open(file, "rb+") as handle:
            handle.seek(max(0, size - _READ_CHUNK))
            tail = handle.read()
            keep = size - len(tail) + tail.rfind(b"\n") + 1
            if keep < size:
                log.warning("spool: cut a torn last line (%d bytes) from %s", size - keep, file.name)
                handle.truncate(keep)
                self._sizes[self._head] = keep

    def _load_cursor(self) -> Position:
        first = Position(min(self._sizes), 0)
        try:
            data = json.loads((self.path / "cursor").read_text())
            position = Position(int(data["segment"]), int(data["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return first
        if position.segment not in self._sizes:
            return first if position < first else Position(self._head, self._sizes[self._head])
        return Position(position.segment, min(position.offset, self._sizes[position.segment]))

    def _save_cursor(self) -> None:
        temporary = self.path / "cursor.tmp"
        temporary.write_text(json.dumps({"segment": self._cursor.segment, "offset": self._cursor.offset}))
        os.replace(temporary, self.path / "cursor")

    def _count_pending(self) -> int:
        total = 0
        for number in sorted(self._sizes):
            if number < self._cursor.segment:
                continue
            offset = self._cursor.offset if number == self._cursor.segment else 0
            total += _count_lines(self._segment_file(number), offset)
        return total


def _count_lines(file: Path, offset: int, end: int | None = None) -> int:
    total = 0
    try:
        with open(file, "rb") as handle:
            handle.seek(offset)
            left = -1 if end is None else max(0, end - offset)
            while left and (chunk := handle.read(_READ_CHUNK if left < 0 else min(_READ_CHUNK, left))):
                total += chunk.count(b"\n")
                left = left - len(chunk) if left > 0 else left
    except FileNotFoundError:
        return 0
    return total


def _nth_newline(data: bytes, n: int) -> int:
    """Index of the n-th newline in data, or of the last one if there are fewer; -1 if none."""
    index = -1
    for _ in range(n):
        found = data.find(b"\n", index + 1)
        if found < 0:
            return data.rfind(b"\n")
        index = found
    return index


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

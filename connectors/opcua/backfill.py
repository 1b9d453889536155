"""Filling the gap after a reconnect: what the OPC UA server's history holds since the last value stored.

A subscription only delivers values from the moment it exists: while the session was gone (the
PLC restarted, the network dropped, the connector was killed) the changes are not sent again.
Servers that keep history (OPC UA Part 11, Historical Access) answer HistoryRead for them. The
source remembers, per variable, the source timestamp of the newest value that reached the spool
(a small checkpoint file beside the spool, written only after the spool took the values, so it
survives a kill -9), and after each (re)connect reads the raw history from there up to now.
Values read twice (history and subscription overlap) are the same points, stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import ua

from connectors.common.points import datetime_ns
from connectors.opcua.client import Target

log = logging.getLogger(__name__)


class Checkpoint:
    """Per variable, the source time (ns) of the newest value known to be in the spool."""

    def __init__(self, folder: Path, source_key: str) -> None:
        digest = hashlib.sha1(source_key.encode()).hexdigest()[:12]
        self.path = folder / f"opcua-{digest}.checkpoint.json"
        self.stamps: dict[str, int] = {}
        self._saved: dict[str, int] = {}
        try:
            loaded = json.loads(self.path.read_text())
            self.stamps = {str(key): int(value) for key, value in loaded.items()}
            self._saved = dict(self.stamps)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring the unreadable backfill checkpoint %s: %s", self.path, exc)

    def durable(self, stamps: dict[str, int]) -> None:
        """`stamps` are all in the spool now: remember them, on disk (atomically) if changed."""
        for key, stamp in stamps.items():
            if stamp > self.stamps.get(key, 0):
                self.stamps[key] = stamp
        if self.stamps == self._saved:
            return
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(self.stamps))
            os.replace(temporary, self.path)
            self._saved = dict(self.stamps)
        except OSError as exc:
            log.warning("cannot write the backfill checkpoint %s: %s", self.path, exc)


async def backfill(
    targets: Iterable[Target],
    since: dict[str, int],
    until: datetime,
    oldest: timedelta,
    take: Callable[[Target, ua.DataValue], None],
    concurrency: int = 16,
) -> tuple[int, int, int]:
    """Read each target's raw history after `since[key]` (never before `until - oldest`) and hand
    every newer value to `take`, oldest first. Returns (values, variables read, refused)."""
    floor = until - oldest
    gate = asyncio.Semaphore(concurrency)
    counts = [0, 0, 0]

    async def one(target: Target) -> None:
        last = since.get(target.key)
        if last is None:
            return
        start = max(datetime.fromtimestamp(last / 1e9, tz=UTC), floor)
        async with gate:
            try:
                history = await target.node.read_raw_history(start, until)
            except ua.UaStatusCodeError as exc:  # no history for this variable: live values only
                counts[2] += 1
                log.debug("no history for %s: %s", target.key, exc)
                return
            except (TimeoutError, ConnectionError, OSError) as exc:
                log.warning("history read of %s failed: %s", target.key, exc)
                return
        counts[1] += 1
        for data_value in history:
            stamp = data_value.SourceTimestamp
            if stamp is not None and datetime_ns(stamp) > last:
                take(target, data_value)
                counts[0] += 1

    await asyncio.gather(*(one(target) for target in targets))
    return counts[0], counts[1], counts[2]

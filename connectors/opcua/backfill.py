"""Filling the gap after a reconnect: what the OPC UA server's history holds since the last value stored.

A subscription only delivers values from the moment it exists: while the session was gone (the
PLC restarted, the network dropped, the connector was killed) the changes are not sent again.
Servers that keep history (OPC UA Part 11, Historical Access) answer HistoryRead for them. The
source remembers, per variable, the source time up to which every value reached the spool (a
small checkpoint file beside the spool, written only after the spool took the values, so it
survives a kill -9), and after each (re)connect reads the raw history from there up to now.
A variable with no time of its own yet is read from the checkpoint's origin, the instant the
source first ran with this spool: what a PLC showed before the first subscription existed (the
connector was slow to connect) is not lost either, and nothing older is imported. Values read
twice (history and subscription overlap) are the same points, stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import ua

from connectors.common.points import datetime_ns
from connectors.opcua.client import Target

log = logging.getLogger(__name__)


class Checkpoint:
    """Per variable, the source time (ns) up to which its values are known to be in the spool;
    `origin`, when the source first ran with this spool (the start for a variable without one).

    On disk: `{"origin": ns, "variables": {key: ns}}`; the older flat `{key: ns}` still loads,
    with its oldest time as origin.
    """

    def __init__(self, folder: Path, source_key: str) -> None:
        digest = hashlib.sha1(source_key.encode()).hexdigest()[:12]
        self.path = folder / f"opcua-{digest}.checkpoint.json"
        self.stamps: dict[str, int] = {}
        self.origin: int | None = None
        self._saved: dict[str, int] = {}
        try:
            loaded = json.loads(self.path.read_text())
            if "variables" in loaded:
                self.origin = int(loaded["origin"])
                loaded = loaded["variables"]
            self.stamps = {str(key): int(value) for key, value in loaded.items()}
            if self.origin is None and self.stamps:
                self.origin = min(self.stamps.values())
            self._saved = dict(self.stamps)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            log.warning("ignoring the unreadable backfill checkpoint %s: %s", self.path, exc)
        if self.origin is None:  # the first run: what the PLCs show from now on is ours to keep
            self.origin = time.time_ns()
            self._save()

    def durable(self, stamps: dict[str, int]) -> None:
        """`stamps` are all in the spool now: remember them, on disk (atomically) if changed."""
        for key, stamp in stamps.items():
            if stamp > self.stamps.get(key, 0):
                self.stamps[key] = stamp
        if self.stamps != self._saved:
            self._save()

    def _save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"origin": self.origin, "variables": self.stamps}))
            os.replace(temporary, self.path)
            self._saved = dict(self.stamps)
        except OSError as exc:
            log.warning("cannot write the backfill checkpoint %s: %s", self.path, exc)


@dataclass
class Filled:
    """What one backfill did: values handed on, variables read, variables without history, and
    the keys whose history could not be read (their checkpoint must stay where it was)."""

    values: int = 0
    read: int = 0
    refused: int = 0
    failed: set[str] = field(default_factory=set)


async def backfill(
    targets: Iterable[Target],
    since: dict[str, int],
    until: datetime,
    oldest: timedelta,
    take: Callable[[Target, ua.DataValue], None],
    origin: int | None = None,
    concurrency: int = 16,
) -> Filled:
    """Read each target's raw history after `since[key]` (or `origin` for a key without one;
    never before `until - oldest`) and hand every newer value to `take`, oldest first."""
    floor = until - oldest
    gate = asyncio.Semaphore(concurrency)
    filled = Filled()

    async def one(target: Target) -> None:
        last = since.get(target.key, origin)
        if last is None:
            return
        start = max(datetime.fromtimestamp(last / 1e9, tz=UTC), floor)
        async with gate:
            try:
                history = await target.node.read_raw_history(start, until)
            except ua.UaStatusCodeError as exc:  # no history for this variable: live values only
                filled.refused += 1
                log.debug("no history for %s: %s", target.key, exc)
                return
            except (TimeoutError, ConnectionError, OSError) as exc:
                filled.failed.add(target.key)
                log.warning("history read of %s failed: %s", target.key, exc)
                return
        filled.read += 1
        for data_value in history:
            stamp = data_value.SourceTimestamp
            if stamp is not None and datetime_ns(stamp) > last:
                take(target, data_value)
                filled.values += 1

    await asyncio.gather(*(one(target) for target in targets))
    return filled

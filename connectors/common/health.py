"""The connector's own health, counted as it runs and written to the sink as `connector_health`.

Fields: points_in (accepted from sources), points_written (accepted by the sink), spooled
(waiting in the spool), dropped (lost to a full spool), rejected (bad input or refused by the
sink), reconnects (of every source and of the sink), lag_s (age of the oldest unwritten point).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from connectors.common.points import Point


@dataclass
class Health:
    points_in: int = 0
    points_written: int = 0
    spooled: int = 0
    dropped: int = 0
    rejected: int = 0
    reconnects: int = 0
    lag_s: float = 0.0

    def count_reconnect(self) -> None:
        self.reconnects += 1

    def point(
        self, connector: str, measurement: str = "connector_health", time_ns: int | None = None
    ) -> Point:
        fields: dict[str, float | int | bool | str] = {
            "points_in": self.points_in,
            "points_written": self.points_written,
            "spooled": self.spooled,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "reconnects": self.reconnects,
            "lag_s": float(self.lag_s),
        }
        return Point(measurement, {"connector": connector}, fields, time_ns or time.time_ns())

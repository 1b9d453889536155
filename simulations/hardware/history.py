"""The virtual PLCs' history: OPC UA HistoryRead answered from the line's own timelines.

An OPC UA server on a real cell usually keeps a short history of its variables (OPC UA Part 11,
Historical Access), so that a client that lost its session can read what it missed. The
simulated line already keeps every value its PLCs showed, in order (the timelines the truth file
is written from), so its servers answer HistoryRead for raw values from those: nothing is stored
twice, and the history reaches back to the start of the run. Only values already published are
returned; process signals (sampled, not kept) have no history.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.server.history import HistoryStorageInterface

from simulations.hardware.clock import ScaledClock
from simulations.hardware.runtime import Timeline

_GOOD = ua.StatusCode(ua.StatusCodes.Good)
_WIN_EPOCH = ua.get_win_epoch()


@dataclass
class _History:
    timeline: Timeline
    convert: Callable[[Any], Any]
    variant: ua.VariantType


def _time(entry: tuple[float, Any]) -> float:
    return entry[0]


class TimelineHistory(HistoryStorageInterface):
    """asyncua history storage over the runtime's timelines (read only: the runtime records)."""

    def __init__(self, clock: ScaledClock, max_history_data_response_size: int = 10_000) -> None:
        super().__init__(max_history_data_response_size)
        self.clock = clock
        self._nodes: dict[ua.NodeId, _History] = {}

    def register(
        self,
        node_id: ua.NodeId,
        timeline: Timeline,
        variant: ua.VariantType,
        convert: Callable[[Any], Any] = lambda value: value,
    ) -> None:
        self._nodes[node_id] = _History(timeline, convert, variant)

    def __contains__(self, node_id: ua.NodeId) -> bool:
        return node_id in self._nodes

    # -- HistoryStorageInterface ----------------------------------------------------------
    async def init(self) -> None:
        return None

    async def new_historized_node(self, node_id: ua.NodeId, period: Any, count: int = 0) -> None:
        return None  # the runtime records every value already

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        return None

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        """Raw values with source timestamps in [start, end] (inclusive), oldest first; newest
        first when start is after end or only end is given (OPC UA Part 11, ReadRawModified)."""
        history = self._nodes.get(node_id)
        if history is None:
            return [], None
        timeline = history.timeline
        entries, published = timeline.entries, timeline.committed
        lo_given = start is not None and start != _WIN_EPOCH
        hi_given = end is not None and end != _WIN_EPOCH
        lo, hi, backwards = -math.inf, math.inf, False
        if lo_given and hi_given:
            backwards = start > end  # type: ignore[operator]
            first, last = (end, start) if backwards else (start, end)
            lo, hi = self._simulated(first), self._simulated(last)  # type: ignore[arg-type]
        elif lo_given:
            lo = self._simulated(start)  # type: ignore[arg-type]
        elif hi_given:  # only an end: the newest values up to it
            hi, backwards = self._simulated(end), True  # type: ignore[arg-type]
        # a microsecond of wall time either side: datetimes carry microseconds, the timeline floats
        slack = 1e-6 * self.clock.speed
        lo, hi = lo - slack, hi + slack
        first = bisect.bisect_left(entries, lo, hi=published, key=_time)
        selected = entries[first : bisect.bisect_right(entries, hi, lo=first, hi=published, key=_time)]
        if backwards:
            selected = selected[::-1]
        if nb_values and len(selected) > nb_values:
            selected = selected[:nb_values]
        continuation = None
        page = self.max_history_data_response_size
        if len(selected) > page:
            continuation = self.clock.utc(selected[page][0])
            selected = selected[:page]
        now = datetime.now(UTC)
        utc, convert, variant = self.clock.utc, history.convert, history.variant
        values = [
            ua.DataValue(
                ua.Variant(convert(value), variant),
                StatusCode=_GOOD,
                SourceTimestamp=utc(t),
                ServerTimestamp=now,
            )
            for t, value in selected
        ]
        return values, continuation

    async def new_historized_event(self, source_id: Any, evtypes: Any, period: Any, count: int = 0) -> None:
        return None

    async def save_event(self, event: Any) -> None:
        return None

    async def read_event_history(
        self, source_id: Any, start: Any, end: Any, nb_values: int, evfilter: Any
    ) -> tuple[list[Any], datetime | None]:
        return [], None

    async def stop(self) -> None:
        return None

    def _simulated(self, instant: datetime) -> float:
        """The simulated time of a wall instant (the inverse of the clock's mapping)."""
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        return (instant.timestamp() - self.clock.start_epoch) * self.clock.speed

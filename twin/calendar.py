"""The shift calendar: when the line is planned to produce (ISO 22400-2 planned operation time).

A line file's `calendar:` lists the shifts by weekday and time of day, the breaks within them and
the holidays, in one time zone (DST included):

    calendar:
      timezone: Europe/Rome
      start: 2026-12-07T06:00        # the instant of the line's time 0 (default: Monday 2026-01-05 00:00)
      shifts:
        - {name: early, days: mon-fri, start: "06:00", end: "14:00"}
        - {name: late, days: [mon, tue, wed, thu, fri], start: "14:00", end: "22:00"}
      breaks:
        - {start: "10:00", end: "10:15"}
        - {start: "18:00", end: "18:30", days: mon-fri}
      holidays: [2026-12-25, 2026-12-26]

A shift whose end is not after its start runs past midnight and belongs to the day it starts on
(a holiday removes the shifts that start on it). A break removes its time of day from every shift
on its days, and a break that runs past midnight belongs to the day it starts on. Shifts may
overlap; their union is planned.

Outside planned time the whole line stands still with every part in place: no machine works,
no order is released, no failure clock and no repair runs (`planned_stop`). The engines
therefore run in planned time, and `PlannedClock` maps the run onto the calendar: a run in
planned time is the calendar run with the stops cut out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import BeforeValidator, Field, field_validator, model_validator

from foundation.errors import FieldError
from foundation.models import Strict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_START = datetime(2026, 1, 5)  # a Monday, 00:00
_CHUNK_DAYS = 56  # periods are generated eight weeks at a time


def _weekdays(value: Any) -> Any:
    """`mon-fri`, `sat`, or a list of names: the weekday numbers (Monday 0)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("all", "daily", "every day"):
            return list(range(7))
        match = re.fullmatch(r"([a-z]{3})\s*-\s*([a-z]{3})", text)
        if match:
            first, last = match.groups()
            if first not in WEEKDAYS or last not in WEEKDAYS:
                raise ValueError(f"unknown weekday in {value!r} (use {', '.join(WEEKDAYS)})")
            a, b = WEEKDAYS.index(first), WEEKDAYS.index(last)
            return [(a + i) % 7 for i in range(((b - a) % 7) + 1)]
        value = [text]
    if isinstance(value, list):
        days = []
        for item in value:
            name = str(item).strip().lower()[:3]
            if name not in WEEKDAYS:
                raise ValueError(f"unknown weekday {item!r} (use {', '.join(WEEKDAYS)})")
            days.append(WEEKDAYS.index(name))
        return sorted(set(days))
    raise ValueError("must be weekdays: a range like mon-fri, a name, or a list of names")


def _time_of_day(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 06:00 as 360 (sexagesimal)
        if 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        raise ValueError(f'not a time of day: {value!r} (write it in quotes, "06:00")')
    if isinstance(value, str):
        text = value.strip()
        if text == "24:00":
            return time(0, 0)
        try:
            return time.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a time of day: {value!r} (use HH:MM)") from None
    return value


Weekdays = Annotated[list[int], BeforeValidator(_weekdays)]
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]


class Shift(Strict):
    """A working period on each of its `days`, from `start` to `end` (past midnight if end <= start)."""

    name: str | None = Field(default=None, min_length=1)
    days: Weekdays = Field(default_factory=lambda: list(range(7)))
    start: TimeOfDay
    end: TimeOfDay


class Break(Strict):
    """A pause on each of its `days` (default: every day), cut out of every shift it overlaps."""

    name: str | None = Field(default=None, min_length=1)
    days: Weekdays = Field(default_factory=lambda: list(range(7)))
    start: TimeOfDay
    end: TimeOfDay


class ShiftCalendar(Strict):
    """The line's planned production time: shifts, breaks and holidays in one time zone."""

    timezone: str = "UTC"
    start: datetime = DEFAULT_START
    shifts: list[Shift] = Field(min_length=1)
    breaks: list[Break] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Rome)") from None
        return value

    @model_validator(mode="after")
    def _shifts_last(self) -> ShiftCalendar:
        for index, shift in enumerate(self.shifts):
            if not shift.days:
                raise FieldError(f"shifts[{index}].days", "must name at least one weekday")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def origin(self) -> datetime:
        """The instant of the line's time 0 (an aware datetime)."""
        start = self.start
        return start.replace(tzinfo=self.zone) if start.tzinfo is None else start

    def clock(self, origin: datetime | None = None) -> PlannedClock:
        """The map between the line's time and planned time, with time 0 at `origin` (default `start`)."""
        if origin is None:
            origin = self.origin()
        elif origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)
        return PlannedClock(self, origin)

    def check_horizon(self, warmup: float, horizon: float) -> None:
        """Refuse a calendar without planned time after the warm-up (nothing could be measured)."""
        clock = self.clock()
        if clock.planned(horizon) - clock.planned(warmup) <= 0:
            raise FieldError("calendar", "no planned production time between the warm-up and the horizon")

    def periods(self, first: date, last: date) -> list[tuple[datetime, datetime]]:
        """The planned periods (aware, merged, breaks removed) of the shifts starting on days first..last."""
        zone = self.zone
        holidays = set(self.holidays)
        spans: list[tuple[datetime, datetime]] = []
        pauses: list[tuple[datetime, datetime]] = []
        day = first - timedelta(days=1)
        while day <= last:
            weekday = day.weekday()
            for shift in self.shifts:
                if weekday in shift.days and day not in holidays:
                    spans.append(_window(day, shift.start, shift.end, zone))
            for pause in self.breaks:
                if weekday in pause.days:
                    pauses.append(_window(day, pause.start, pause.end, zone))
            day += timedelta(days=1)
        return _subtract(_merge(spans), _merge(pauses))


def _window(day: date, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, start, zone)
    end_day = day if end > start else day + timedelta(days=1)
    # in UTC: arithmetic between aware datetimes of one zone ignores a DST change between them
    return begin.astimezone(UTC), datetime.combine(end_day, end, zone).astimezone(UTC)


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def _subtract(
    spans: list[tuple[datetime, datetime]], pauses: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    result = []
    for begin, end in spans:
        pieces = [(begin, end)]
        for pause_begin, pause_end in pauses:
            if pause_end <= begin or pause_begin >= end:
                continue
            cut = []
            for a, b in pieces:
                if pause_end <= a or pause_begin >= b:
                    cut.append((a, b))
                    continue
                if a < pause_begin:
                    cut.append((a, pause_begin))
                if pause_end < b:
                    cut.append((pause_end, b))
            pieces = cut
        result.extend(piece for piece in pieces if piece[1] > piece[0])
    return result


class PlannedClock:
    """The line's time (seconds from its origin, on the calendar) against planned time.

    `planned(t)` is the planned time in [0, t]; `line_time(p)` the first instant, at or after the
    first planned period's start, by which `p` of planned time has passed (an event at the instant
    a planned period ends happens before the stop). Periods are generated as far as asked for.
    """

    def __init__(self, calendar: ShiftCalendar, origin: datetime) -> None:
        self.calendar = calendar
        self.origin = origin.astimezone(UTC)
        self.starts: list[float] = []  # line seconds of each planned period's start, in order
        self.ends: list[float] = []
        self.before: list[float] = []  # planned seconds before each period
        self._through = origin.astimezone(calendar.zone).date() - timedelta(days=1)
        self._extend_days = 0
        self._ends_cache: list[float] | None = None

    # -- periods ---------------------------------------------------------------------
    def _extend(self) -> None:
        first = self._through + timedelta(days=1)
        last = first + timedelta(days=_CHUNK_DAYS - 1)
        for begin, end in self.calendar.periods(first, last):
            a = (begin - self.origin).total_seconds()
            b = (end - self.origin).total_seconds()
            if b <= 0:
                continue
            a = max(a, 0.0)
            if self.ends and a <= self.ends[-1]:  # overlaps the last one (a shift past midnight)
                if b > self.ends[-1]:
                    self.ends[-1] = b
                continue
            self.before.append(self.before[-1] + self.ends[-1] - self.starts[-1] if self.starts else 0.0)
            self.starts.append(a)
            self.ends.append(b)
        self._through = last
        self._extend_days += _CHUNK_DAYS
        if self._extend_days > 366 * 50 and not self.starts:
            raise ValueError("the shift calendar has no planned time in fifty years")

    def _cover_time(self, t: float) -> None:
        while not self.ends or self._covered_until() <= t:
            self._extend()

    def _covered_until(self) -> float:
        end_day = self._through + timedelta(days=1)
        midnight = datetime.combine(end_day, time(0), self.calendar.zone).astimezone(UTC)
        return (midnight - self.origin).total_seconds()

    def _cover_planned(self, p: float) -> None:
        while not self.ends or self.before[-1] + self.ends[-1] - self.starts[-1] < p:
            self._extend()

    def periods(self, t0: float, t1: float) -> Iterator[tuple[float, float]]:
        """The planned periods overlapping [t0, t1], clipped to it, in line seconds."""
        self._cover_time(t1)
        index = max(0, bisect.bisect_right(self.ends, t0))
        while index < len(self.starts) and self.starts[index] < t1:
            yield max(self.starts[index], t0), min(self.ends[index], t1)
            index += 1

    # -- the map -----------------------------------------------------------------------
    def planned(self, t: float) -> float:
        """Planned seconds in [0, t]."""
        if t <= 0:
            return 0.0
        self._cover_time(t)
        index = bisect.bisect_right(self.starts, t) - 1
        if index < 0:
            return 0.0
        return self.before[index] + min(t, self.ends[index]) - self.starts[index]

    def line_time(self, p: float) -> float:
        """The line's time at which `p` planned seconds have passed (the earliest such instant)."""
        self._cover_planned(p)
        # the period in which planned time p is reached: before[i] < p <= before[i] + length[i]
        index = bisect.bisect_left(self._ends_planned(), p)
        return self.starts[index] + p - self.before[index]

    def _ends_planned(self) -> list[float]:
        cached = self._ends_cache
        if cached is None or len(cached) != len(self.starts):
            cached = [b + e - s for b, s, e in zip(self.before, self.starts, self.ends, strict=True)]
            self._ends_cache = cached
        return cached

    def line_times(self, planned: np.ndarray) -> np.ndarray:
        """`line_time` of each of an array of planned instants."""
        planned = np.asarray(planned, dtype=float)
        if planned.size == 0:
            return planned.copy()
        self._cover_planned(float(planned.max()))
        ends = np.asarray(self._ends_planned())
        index = np.searchsorted(ends, planned, side="left")
        return np.asarray(self.starts)[index] + planned - np.asarray(self.before)[index]

    def stops(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The planned stops within [t0, t1]: (planned instant at which the line stands, seconds)."""
        stops = []
        cursor = t0
        for a, b in self.periods(t0, t1):
            if a > cursor:
                stops.append((self.planned(cursor), a - cursor))
            cursor = b
        if cursor < t1:
            stops.append((self.planned(cursor), t1 - cursor))
        return stops

    def next_change(self, t: float) -> tuple[float, bool]:
        """(the next instant after `t` at which planned production starts or stops, True if it starts)."""
        self._cover_time(t + 1.0)
        while True:
            index = bisect.bisect_right(self.starts, t)
            if index > 0 and t < self.ends[index - 1]:
                return self.ends[index - 1], False
            if index < len(self.starts):
                return self.starts[index], True
            self._extend()

    def is_planned(self, t: float) -> bool:
        """True when `t` falls in a planned period (start included, end excluded)."""
        self._cover_time(t + 1.0)
        index = bisect.bisect_right(self.starts, t) - 1
        return index >= 0 and t < self.ends[index]

    def instant(self, t: float) -> datetime:
        """The instant (UTC) of line time `t`."""
        return self.origin + timedelta(seconds=t)

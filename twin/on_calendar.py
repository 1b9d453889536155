"""A run with a shift calendar: the engine runs in planned time, and the run is put back on the calendar.

Outside planned time the line stands still with every part in place (`twin.calendar`), so the
run on the calendar is the run in planned time with the planned stops put back in. Both engines
run the line over the planned time of the horizon (`PlannedRun.horizon`, `.warmup`), report the
parts in the line at each planned stop (`stops`: the instant, in planned time, at which the
line stands), and `on_calendar` turns their record into the calendar's, following ISO 22400-2:

- the station state shares are shares of the calendar period T; the planned stops are the new
  share `planned_stop` (off power); availability, performance, quality and OEE are against
  planned busy time and so do not change;
- `throughput_per_hour` is per calendar hour, `throughput_per_planned_hour` per planned hour;
- WIP is averaged over T: during a stop the parts in the line stay there;
- a lead time runs on the calendar: a part that waits over a weekend waits for the weekend;
- the bottleneck shares are shares of T (no machine is a bottleneck while the line stands).

An event at the instant a planned period ends (a part finishing as the shift ends) happens
before the stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from twin.calendar import PlannedClock
from twin.engine import RunResult
from twin.line import Line

_SNAP = 1e-9  # relative: a release computed as exit - lead lands on its planned instant's side


@dataclass
class PlannedRun:
    """The planned-time run of a calendar run: its horizon and warm-up, and the stops to sample."""

    clock: PlannedClock
    horizon_s: float  # on the calendar (the line's time)
    warmup_s: float
    horizon: float = field(init=False)  # in planned time
    warmup: float = field(init=False)
    stops: list[tuple[float, float]] = field(init=False)  # (planned instant, calendar seconds)

    def __post_init__(self) -> None:
        self.horizon = self.clock.planned(self.horizon_s)
        self.warmup = self.clock.planned(self.warmup_s)
        self.stops = self.clock.stops(self.warmup_s, self.horizon_s)

    @property
    def stop_instants(self) -> list[float]:
        return [instant for instant, _ in self.stops]


def planned_run(line: Line, horizon: float, warmup: float, origin: datetime | None = None) -> PlannedRun:
    """The planned-time run of `line` over `horizon` with `warmup` (calendar seconds) from `origin`."""
    assert line.calendar is not None
    return PlannedRun(line.calendar.clock(origin), horizon, warmup)


def on_calendar(result: RunResult, line: Line, plan: PlannedRun, wip_at_stops: list[int]) -> RunResult:
    """`result` (a run in planned time) on the calendar; `wip_at_stops`: the parts in the line per stop."""
    record: dict[str, Any] = dict(result.kpis)
    period = plan.horizon_s - plan.warmup_s
    planned_period = plan.horizon - plan.warmup
    kept = planned_period / period  # the planned share of T
    stopped = period - planned_period
    stations: dict[str, dict[str, Any]] = {}
    for station in line.stations:
        values = dict(record["stations"][station.name])
        for key in ("working", "blocked", "starved", "off", "down", "waiting_repair", "setup", "maintenance"):
            values[key] *= kept
        values["utilization"] = values["working"]
        values["planned_stop"] = 1.0 - kept
        values["bottleneck_sole"] *= kept
        values["bottleneck_shifting"] *= kept
        if station.power is not None:
            values["energy_kwh"] += station.power.off * stopped * station.capacity / 3600.0
        good = values["parts_out"]
        values["energy_per_good_part_kwh"] = values["energy_kwh"] / good if good else None
        stations[station.name] = values
    energy = sum(values["energy_kwh"] for values in stations.values())
    exits = record["parts_out"]
    wip_area = record["wip_mean"] * planned_period + sum(
        wip * seconds for wip, (_, seconds) in zip(wip_at_stops, plan.stops, strict=True)
    )
    exit_planned = np.asarray(result.exit_times, dtype=float)
    release_planned = exit_planned - np.asarray(result.lead_times, dtype=float)
    clock = plan.clock
    exit_times = clock.line_times(exit_planned)
    release_times = clock.line_times(release_planned - _SNAP * np.maximum(1.0, np.abs(release_planned)))
    lead_times = np.maximum(exit_times - release_times, 0.0)
    record.update(
        throughput_per_hour=exits / period * 3600.0,
        wip_mean=wip_area / period,
        lead_time_mean_s=float(lead_times.mean()) if len(lead_times) else None,
        lead_time_p95_s=float(np.percentile(lead_times, 95)) if len(lead_times) else None,
        energy_kwh=energy,
        energy_per_good_part_kwh=energy / exits if exits else None,
        planned_share=kept,
        throughput_per_planned_hour=exits / planned_period * 3600.0,
        energy_per_planned_hour_kwh=energy / planned_period * 3600.0,
        stations=stations,
        horizon_s=float(plan.horizon_s),
        warmup_s=float(plan.warmup_s),
    )
    periods = {
        name: [_periods_on_calendar(clock, machine) for machine in machines]
        for name, machines in result.active_periods.items()
    }
    # (a flow run's trace, if asked for, stays on planned time)
    return replace(
        result,
        kpis=record,
        lead_times=lead_times.tolist(),
        exit_times=exit_times.tolist(),
        active_periods=periods,
    )


def _periods_on_calendar(clock: PlannedClock, periods: Any) -> list[tuple[float, float]]:
    """Active periods (planned time) on the calendar: a period over a stop is cut at the stop."""
    array = np.asarray(periods, dtype=float).reshape(-1, 2)
    out: list[tuple[float, float]] = []
    for start, end in array:
        a = float(clock.line_time(start))
        b = float(clock.line_time(end))
        for low, high in clock.periods(a, b) if b > a else [(a, b)]:
            out.append((low, high))
    return out

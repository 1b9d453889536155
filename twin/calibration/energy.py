"""A station's electrical power in each state, and its switch-off, estimated from what it recorded.

A station's energy meter (the MQTT `energy` sensor, kWh, a running integral) grows between two
readings by the sum over its power groups (`twin.line.Power`: working, idle, down, setup, off) of
the group's power times the machine-hours spent in it: a linear model with one coefficient per
group. `fit_power` solves it by least squares on the meter's increments, or, without a meter, on
the samples of the PLC's `Power` signal (kW) against the machines in each group at each sample;
the residuals give each power's standard error. Noise-free readings give the true powers to
rounding. The increments are the model's own form: an error that enters the meter's readings
(not its increments) makes neighbouring increments correlate negatively, which only widens the
true spread less than the standard error says (the interval stays on the safe side).

Switch-off (`switch_off: {after, restart}`) shows as a machine going from starved to `off`, and a
set-up right after `off`: the restart. `switch_off_events` finds both, so that restarts do not
count as changeovers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.calibration.records import StationRecord
from twin.line import Power
from twin.station import STATE_NAMES

Z95 = 1.959963984540054


def _power_groups() -> dict[str, str]:
    """Each state's power group, as `Power.by_state` books it (asked of it, not repeated here)."""
    groups = tuple(Power.model_fields)
    probe = Power(**{name: float(index) for index, name in enumerate(groups)})
    return {state: groups[int(kw)] for state, kw in zip(STATE_NAMES, probe.by_state(), strict=True)}


GROUP_OF: dict[str, str] = _power_groups()  # state name -> working, idle, down, setup or off
GROUPS: tuple[str, ...] = tuple(Power.model_fields)


@dataclass
class PowerEstimate:
    """The least-squares powers (kW) per group, their standard errors and the data behind them."""

    basis: str  # "energy" (meter increments) or "Power" (samples of the power signal)
    n: int  # increments or samples used
    kw: dict[str, float] = field(default_factory=dict)  # the groups that could be estimated
    se: dict[str, float] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)  # machine-hours per group in the data
    rms_residual: float = 0.0  # kWh per increment, or kW per sample
    warnings: list[str] = field(default_factory=list)

    def ci95(self, group: str) -> tuple[float, float]:
        half = Z95 * self.se[group]
        return self.kw[group] - half, self.kw[group] + half

    def summary(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "n": self.n,
            "kw": self.kw,
            "se": self.se,
            "ci95": {group: self.ci95(group) for group in self.kw},
            "hours": self.hours,
            "rms_residual": self.rms_residual,
        }


class GroupClock:
    """The machine-hours a station's machines spent in each power group from the start of its
    recorded states up to any instant: piecewise linear, from the merged state intervals."""

    def __init__(self, histories: list[StationRecord], window_s: float, weight: float = 1.0) -> None:
        self.parts = []
        self.start = 0.0
        for history in histories:
            intervals = history.intervals(window_s)
            if not intervals:
                continue
            starts = np.array([start for _, start, _ in intervals])
            lengths = np.array([end - start for _, start, end in intervals])
            column = np.array([GROUPS.index(GROUP_OF[state]) for state, _, _ in intervals])
            cumulative = np.zeros((len(intervals) + 1, len(GROUPS)))
            np.add.at(cumulative[1:], (np.arange(len(intervals)), column), lengths)
            self.parts.append((starts, lengths, column, np.cumsum(cumulative, axis=0)))
            self.start = max(self.start, float(starts[0]))
        self.weight = weight
        self.covered = bool(self.parts) and len(self.parts) == len(histories)

    def hours(self, times: np.ndarray) -> np.ndarray:
        """(len(times), len(GROUPS)) machine-hours per group from 0 to each time."""
        out = np.zeros((len(times), len(GROUPS)))
        for starts, lengths, column, cumulative in self.parts:
            index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(starts) - 1)
            inside = np.clip(times - starts[index], 0.0, lengths[index])
            out += cumulative[index]
            out[np.arange(len(times)), column[index]] += inside
        return out * self.weight / 3600.0

    def counts(self, times: np.ndarray) -> np.ndarray:
        """(len(times), len(GROUPS)) machines in each group at each time."""
        out = np.zeros((len(times), len(GROUPS)))
        for starts, _, column, _ in self.parts:
            index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(starts) - 1)
            out[np.arange(len(times)), column[index]] += 1.0
        return out * self.weight


def _least_squares(x: np.ndarray, y: np.ndarray, basis: str, hours: np.ndarray) -> PowerEstimate:
    """Fit y = x @ kW over the groups that the data holds; the others are left out with a warning."""
    result = PowerEstimate(basis=basis, n=len(y))
    result.hours = {group: float(h) for group, h in zip(GROUPS, hours, strict=True) if h > 0}
    scale = np.abs(x).max(axis=0)
    kept = [k for k in range(len(GROUPS)) if scale[k] > 0]
    if not kept:
        result.warnings.append("no time in any state covered by the readings")
        return result
    design = x[:, kept] / scale[kept]  # columns scaled to 1: the rank test is about the data, not the units
    rank = np.linalg.matrix_rank(design)
    if rank < len(kept):
        # a group whose time is always a fixed multiple of another's cannot be told apart
        result.warnings.append(
            "the time in "
            + ", ".join(GROUPS[k] for k in kept)
            + f" is not independent across the {len(y)} readings (rank {rank}); no power estimated"
        )
        return result
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    dof = len(y) - len(kept)
    rss = float(residuals @ residuals)
    variance = rss / dof if dof > 0 else math.inf
    inverse = np.linalg.inv(design.T @ design)
    result.rms_residual = math.sqrt(rss / len(y))
    for j, k in enumerate(kept):
        result.kw[GROUPS[k]] = float(beta[j] / scale[k])
        se = math.sqrt(max(variance * float(inverse[j, j]), 0.0)) if dof > 0 else math.inf
        result.se[GROUPS[k]] = se / float(scale[k])
    return result


def fit_power(record: StationRecord, window_s: float, capacity: int = 1) -> PowerEstimate | None:
    """The station's kW per power group from its energy meter, else from its power samples (None
    when it recorded neither, or no states). A station with several machines uses each machine's
    states; with only the station's aggregate state, every machine is taken to be in it."""
    histories = record.state_histories()
    weight = float(capacity) if capacity > 1 and not record.machines else 1.0
    clock = GroupClock(histories, window_s, weight)
    if not clock.covered:
        return None
    if len(record.energy_kwh) >= 2:
        return _fit_meter(record, window_s, clock)
    if record.power_kw:
        return _fit_samples(record, window_s, clock)
    return None


def _fit_meter(record: StationRecord, window_s: float, clock: GroupClock) -> PowerEstimate:
    times = np.asarray(record.energy_times, dtype=float)
    readings = np.asarray(record.energy_kwh, dtype=float)
    order = np.argsort(times, kind="stable")
    times, readings = times[order], readings[order]
    inside = (times >= clock.start) & (times <= window_s)  # the state is known from the first one on
    times, readings = times[inside], readings[inside]
    hours = clock.hours(times)
    x = np.diff(hours, axis=0)
    y = np.diff(readings)
    # a meter that restarted (a PLC restart) counts from 0 again: that increment is unknown
    reset = (y < 0) & (readings[1:] < 0.5 * readings[:-1])
    x, y = x[~reset], y[~reset]
    result = _least_squares(x, y, "energy", x.sum(axis=0))
    if reset.any():
        result.warnings.append(
            f"the energy meter went back {int(reset.sum())} times; those increments are left out"
        )
    return result


def _fit_samples(record: StationRecord, window_s: float, clock: GroupClock) -> PowerEstimate:
    times = np.asarray(record.power_times, dtype=float)
    values = np.asarray(record.power_kw, dtype=float)
    inside = (times >= clock.start) & (times <= window_s) & np.isfinite(values)
    times, values = times[inside], values[inside]
    span = clock.hours(np.array([clock.start, window_s]))
    return _least_squares(clock.counts(times), values, "Power", span[1] - span[0])


@dataclass
class SwitchOffEvents:
    """What a machine's states say about its switch-off: the starved time before each `off`, and
    the set-ups that follow an `off` (restarts), as (start, end) intervals."""

    idle_before_off: list[float] = field(default_factory=list)
    restarts: list[tuple[float, float]] = field(default_factory=list)
    offs: int = 0


def switch_off_events(intervals: list[tuple[str, float, float]], window_s: float) -> SwitchOffEvents:
    """One machine's switch-offs from its merged state intervals.

    The starved interval just before an `off` that starts inside the window is the idle time after
    which it switched off (one cut by the window's start is left out; a machine that went off with
    no starved time before it counts 0). A set-up that starts as an `off` ends is a restart; the
    complete ones (inside the window) are its durations.
    """
    events = SwitchOffEvents()
    for k, (state, start, end) in enumerate(intervals):
        before = intervals[k - 1] if k > 0 and intervals[k - 1][2] == start else None
        if state == "off" and start > 0:
            events.offs += 1
            if before is None:
                continue
            if before[0] == "starved":
                if before[1] > 0:
                    events.idle_before_off.append(before[2] - before[1])
            else:
                events.idle_before_off.append(0.0)
        elif state == "setup" and before is not None and before[0] == "off" and start > 0 and end < window_s:
            events.restarts.append((start, end))
    return events


def observed_energy(record: StationRecord, window_s: float) -> tuple[float, str] | None:
    """The station's energy over [0, window_s] in kWh and what it was read from: the meter's growth
    inside the window, over the time its increments cover, scaled to the window (a restart's
    increment left out); else the mean of the `Power` samples times the window. None without either."""
    times = np.asarray(record.energy_times, dtype=float)
    readings = np.asarray(record.energy_kwh, dtype=float)
    inside = (times >= 0.0) & (times <= window_s)
    if inside.sum() >= 2:
        order = np.argsort(times[inside], kind="stable")
        times, readings = times[inside][order], readings[inside][order]
        steps, spans = np.diff(readings), np.diff(times)
        kept = ~((steps < 0) & (readings[1:] < 0.5 * readings[:-1]))
        covered = float(spans[kept].sum())
        if covered > 0:
            return float(steps[kept].sum()) * window_s / covered, "energy"
    samples = np.asarray(record.power_kw, dtype=float)
    at = np.asarray(record.power_times, dtype=float)
    samples = samples[(at >= 0.0) & (at <= window_s) & np.isfinite(samples)]
    if len(samples):
        return float(samples.mean()) * window_s / 3600.0, "Power"
    return None

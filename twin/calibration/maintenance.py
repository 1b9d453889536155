"""Preventive maintenance as the line did it: how often a machine was serviced, and for how long.

The twin services a machine (`maintenance: {every | parts, duration}`, state `maintenance`) when
its age reaches `every` of operating time or `parts` parts, where its age starts again at each
renewal: the end of a repair or of a service. So each service that starts inside the window after a
renewal seen in it gives one observed interval in both measures: the working time and the parts
finished since that renewal. The trigger is the measure in which those intervals vary least (a
policy the line keeps is constant in its own measure and scattered in the other), unless the prior
line names one; its value is the intervals' median. The complete services are the durations,
fitted by `fit_durations`. The age at the window's start is unknown, so the first service of each
machine, with no renewal before it, gives a duration but no interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.calibration.fit import FitReport, fit_durations
from twin.calibration.records import StationRecord

RENEWING = ("down", "maintenance")  # the end of a repair or of a service makes the machine new


@dataclass
class ServiceIntervals:
    """One or more machines' services: the age at each (working seconds and parts since the last
    renewal; parts only where they are known per machine) and their durations."""

    operating: list[float] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    services: int = 0


def service_intervals(
    intervals: list[tuple[str, float, float]], window_s: float, part_times: list[float] | None = None
) -> ServiceIntervals:
    """One machine's services from its merged state intervals; `part_times`, the instants it finished
    its parts, gives the parts-based intervals (None: not known for this machine)."""
    found = ServiceIntervals()
    finished = np.sort(np.asarray(part_times if part_times is not None else [], dtype=float))
    renewed: float | None = None  # when the machine was last renewed (None: not seen in the window)
    working = 0.0
    for state, start, end in intervals:
        if state == "maintenance" and start > 0:
            found.services += 1
            if end < window_s:
                found.durations.append(end - start)
            if renewed is not None:
                found.operating.append(working)
                if part_times is not None:
                    lo, hi = np.searchsorted(finished, [renewed, start], side="right")
                    found.parts.append(int(hi - lo))
        if state in RENEWING:
            renewed, working = (end, 0.0) if end < window_s else (None, 0.0)
        elif state == "working" and renewed is not None:
            working += end - start
    return found


@dataclass
class MaintenanceEstimate:
    """What the services say: the trigger and its value, the duration's fit, and the samples."""

    services: int = 0
    trigger: str | None = None  # "every" or "parts"
    value: float | None = None  # seconds of operating time, or parts
    operating: list[float] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)
    duration_fit: FitReport | None = None

    def summary(self) -> dict[str, Any]:
        def spread(values: list[float] | list[int]) -> dict[str, float] | None:
            if not values:
                return None
            data = np.asarray(values, dtype=float)
            return {
                "n": len(data),
                "median": float(np.median(data)),
                "min": float(data.min()),
                "max": float(data.max()),
            }

        return {
            "services": self.services,
            "trigger": self.trigger,
            "value": self.value,
            "operating_s": spread(self.operating),
            "parts": spread(self.parts),
            "duration": self.duration_fit.best.spec if self.duration_fit else None,
        }


def _cv(values: list[float] | list[int]) -> float:
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    return float(data.std(ddof=1)) / mean if len(data) > 1 and mean > 0 else float("inf")


def estimate_maintenance(
    record: StationRecord, window_s: float, prior_trigger: str | None, minimum: int
) -> MaintenanceEstimate:
    """The station's maintenance from its machines' services (parts-based intervals only for a
    station with one machine: the part events do not say which machine made a part)."""
    estimate = MaintenanceEstimate()
    histories = record.state_histories()
    single = len(histories) == 1
    durations: list[float] = []
    for history in histories:
        found = service_intervals(
            history.intervals(window_s), window_s, record.part_times if single else None
        )
        estimate.services += found.services
        estimate.operating += found.operating
        estimate.parts += found.parts
        durations += found.durations
    if len(durations) >= 2:
        estimate.duration_fit = fit_durations(durations)
    if len(estimate.operating) < minimum:
        return estimate
    trigger = prior_trigger
    if trigger is None:
        by_parts = len(estimate.parts) == len(estimate.operating)
        trigger = "parts" if by_parts and _cv(estimate.parts) < _cv(estimate.operating) else "every"
    if trigger == "parts" and len(estimate.parts) < minimum:
        return estimate
    estimate.trigger = trigger
    if trigger == "parts":
        estimate.value = float(max(1, round(float(np.median(estimate.parts)))))
    else:
        estimate.value = float(np.median(estimate.operating))
    return estimate

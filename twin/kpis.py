"""Key performance indicators of a run: throughput, WIP, lead time, state shares, OEE, bottleneck.

Definitions (also in docs/kpis.md), over the observed period T = horizon - warm-up:

- throughput_per_hour: good parts leaving the last station per hour;
- wip_mean: time-average number of parts in the line (released, not yet out or scrapped);
- lead time: from a part's release into the line to its exit from the last station;
- station state shares: fractions of machine time working / blocked / starved / down
  (under repair) / waiting_repair (for a technician) / setup, averaged over the station's
  machines (they sum to 1);
- utilization: the working share;
- availability = (planned busy - down - waiting_repair - setup) / planned busy, where planned
  busy = 1 - planned_stop - maintenance (ISO 22400-2: breakdowns, the wait for a technician and
  changeovers are availability losses; planned stops and preventive maintenance are not);
- performance = ideal cycle time x parts processed / (available machine time): blocked
  and starved time are performance losses, not availability losses;
- quality = good parts / parts processed at the station;
- oee = availability x performance x quality;
- energy_kwh: per station, the sum over states of the power in the state (`power:`) times the
  machine time in it; per line, the sum over the stations; energy_per_good_part_kwh: the line's
  energy over the good parts out of the line.

The record's keys, types and units are declared in `twin.kpi_catalogue`. What the KPI code
reads of an engine's finished run is `LineAccounts` and `MachineAccounts`: the SimPy
engine's `LineModel` and `Machine` have it, and so do the flow engine's accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from twin.bottleneck import Periods, bottleneck_shares
from twin.station import REPORTED_STATES, STATE_NAMES, STOPPED

if TYPE_CHECKING:
    from twin.line import Line

# the reported state shares in the record's order (twin.kpi_catalogue): waiting for repair beside down
SHARES = (
    "working",
    "blocked",
    "starved",
    "off",
    "down",
    "waiting_repair",
    "setup",
    "maintenance",
    "planned_stop",
)
assert sorted(SHARES) == sorted(REPORTED_STATES)


class MachineAccounts(Protocol):
    """What the KPIs read of one machine after a run: time per state, counts, active periods."""

    @property
    def time_in(self) -> Sequence[float]: ...  # seconds per state code (twin.station.STATE_NAMES)

    @property
    def processed(self) -> int: ...

    @property
    def parts_out(self) -> int: ...

    @property
    def scrapped(self) -> int: ...

    @property
    def failures(self) -> int: ...

    @property
    def services(self) -> int: ...  # preventive maintenance services begun

    def active_periods(self, start: float) -> Periods: ...  # since `start`, in time order


class LineAccounts(Protocol):
    """What the KPIs read of a finished run: the line, its machines per station, line counters."""

    @property
    def line(self) -> Line: ...

    @property
    def machines(self) -> Sequence[Sequence[MachineAccounts]]: ...

    @property
    def exits(self) -> int: ...

    @property
    def scrapped(self) -> int: ...

    @property
    def wip_area(self) -> float: ...  # part-seconds in the line over the observed period

    @property
    def lead_times(self) -> ArrayLike: ...


def line_kpis(model: LineAccounts, *, horizon: float, warmup: float) -> dict[str, Any]:
    """The flat KPI record of a finished run (the keys of `fabbrica twin run --json`)."""
    period = horizon - warmup
    lead_times = np.asarray(model.lead_times, dtype=float)
    mix = model.line.product_mix
    stations: dict[str, dict[str, Any]] = {}
    all_periods = []
    owners = []
    for station, machines in zip(model.line.stations, model.machines, strict=True):
        machine_time = period * len(machines)
        shares = {
            name: sum(machine.time_in[STATE_NAMES.index(name)] for machine in machines) / machine_time
            for name in SHARES
        }
        shares["down"] += sum(machine.time_in[STOPPED] for machine in machines) / machine_time
        processed = sum(machine.processed for machine in machines)
        # kW x machine-seconds per state, in kWh (0 without `power`)
        energy = 0.0
        if station.power is not None:
            for kw, code in zip(station.power.by_state(), range(len(STATE_NAMES)), strict=True):
                energy += kw * sum(machine.time_in[code] for machine in machines) / 3600.0
        good = sum(machine.parts_out for machine in machines)
        scrapped = sum(machine.scrapped for machine in machines)
        ideal = station.ideal_cycle_time or station.mean_cycle_time(mix)
        # ISO 22400-2: planned busy time = planned operation time - planned downtime (maintenance)
        planned = 1.0 - shares["planned_stop"] - shares["maintenance"]
        available = planned - shares["down"] - shares["setup"] - shares["waiting_repair"]
        availability = max(0.0, available / planned) if planned > 0 else 0.0
        available_time = availability * planned * machine_time
        performance = ideal * processed / available_time if available_time > 0 else 0.0
        quality = (processed - scrapped) / processed if processed else 1.0
        stations[station.name] = {
            **shares,
            "utilization": shares["working"],
            "oee": availability * performance * quality,
            "availability": availability,
            "performance": performance,
            "quality": quality,
            "parts_out": good,
            "scrapped": scrapped,
            "failures": sum(machine.failures for machine in machines),
            "services": sum(machine.services for machine in machines),
            "energy_kwh": energy,
            "energy_per_good_part_kwh": energy / good if good else None,
        }
        for machine in machines:
            all_periods.append(machine.active_periods(warmup))
            owners.append(station.name)
    sole, shifting = bottleneck_shares(all_periods, warmup, horizon)
    for name in stations:
        stations[name]["bottleneck_sole"] = 0.0
        stations[name]["bottleneck_shifting"] = 0.0
    for owner, s, sh in zip(owners, sole, shifting, strict=True):
        stations[owner]["bottleneck_sole"] += float(s)
        stations[owner]["bottleneck_shifting"] += float(sh)
    energy = sum(values["energy_kwh"] for values in stations.values())
    bottleneck = max(
        stations, key=lambda n: stations[n]["bottleneck_sole"] + stations[n]["bottleneck_shifting"]
    )
    return {
        "throughput_per_hour": model.exits / period * 3600.0,
        "parts_out": model.exits,
        "scrapped": model.scrapped,
        "wip_mean": model.wip_area / period,
        "lead_time_mean_s": float(lead_times.mean()) if len(lead_times) else None,
        "lead_time_p95_s": float(np.percentile(lead_times, 95)) if len(lead_times) else None,
        "bottleneck": bottleneck,
        "energy_kwh": energy,
        "energy_per_good_part_kwh": energy / model.exits if model.exits else None,
        "planned_share": 1.0,
        "throughput_per_planned_hour": model.exits / period * 3600.0,
        "energy_per_planned_hour_kwh": energy / period * 3600.0,
        "stations": stations,
    }

"""Validating a twin against the line: does the calibrated model reproduce what the line did?

The twin is run with independent replications over a window as long as the observed one
(after its own warm-up). Observed and simulated throughput and per-station state shares are
compared, and the line's WIP when every station's PLC recorded its occupancy (parts held by its
machines and buffer, summed over the stations and averaged over time): from the growth of the
stations' `OccupancySeconds` counters when they sent them, exact whatever the PLCs' refresh
interval, else from their sampled `Occupancy` values, with a warning (at the demo's refresh
every 600 s, such a sample made 37 of 400 correct twins invalid). Each checked quantity
(the throughput, the WIP, and the working share of every
station that worked at least 5 % of the time) passes when the line's value
lies within the tolerance of the twin's mean, or within the twin's 95 % prediction interval
for one run of that length (a recorded window is one sample of a random process, and a short
window alone can differ from the long-run mean by more than the tolerance). The twin is
`valid` when every check passes. A station with parallel machines is checked when each
machine's own state was recorded (its shares are their average, as the twin's); with only the
station's aggregate state it is shown but not checked.

Each station's throughput (good parts it finished per hour) is compared too. On a line that is a
network (routes, rework, assembly, branches, transport) it is checked for every station that
finished parts: a station's rate carries what the line's rate does not, the rework it does
again and the products routed through it. On a chain every station passes the line's rate on
(less the scrap downstream), so those figures are shown but not checked again. The line's
throughput counts the parts whose events say they left the line (`to: exit`), at whatever station;
without those fields, the good parts of the last station.

The plant's counts (issue 18): the shares of time waiting for a technician (`waiting_repair`), in
preventive maintenance, switched off and in planned stops are checked at every comparable station
where the line or the twin spent at least 1 % of the time in them (the same rule). Where a station
recorded its energy (the meter's growth over the window, else its `Power` samples' mean) and the
twin counts its energy (`power:`), its energy per good part is checked against the twin's
(`energy_per_good_part_kwh`), and the line's (those stations' energy over the parts that left the
line) when every station the twin counts energy for was metered. A station metered but without
`power:` in the twin shows its energy, unchecked.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from twin.calibration.energy import observed_energy
from twin.calibration.records import TO_EXIT, StationRecord, counted_wip, line_wip
from twin.engine import simulate
from twin.experiments.stats import estimate, t_quantile
from twin.line import Line
from twin.station import REPORTED_STATES

log = logging.getLogger(__name__)

# the state shares checked beside `working` (issue 18), where the line or the twin spent at least
# SHARE_FLOOR of the time in them: a twin that waits for technicians, services, switches off or
# stops for the calendar as the line did
CHECKED_SHARES = ("waiting_repair", "maintenance", "off", "planned_stop")
SHARE_FLOOR = 0.01


def half_width(values: list[float]) -> float:
    """Student-t 95 % half-width of the mean of independent replications (inf for fewer than 2)."""
    return estimate(values).ci95 if len(values) >= 2 else math.inf


def prediction_half_width(values: list[float], confidence: float = 0.95) -> float:
    """Half-width of the interval that holds one more run's value with `confidence`."""
    if len(values) < 2:
        return math.inf
    sd = float(np.std(values, ddof=1))
    return t_quantile(len(values) - 1, confidence) * sd * math.sqrt(1 + 1 / len(values))


def _check(observed: float, twin: list[float], tolerance: float) -> dict[str, Any]:
    mean = float(np.mean(twin))
    allowed = max(tolerance * abs(observed), prediction_half_width(twin))
    return {
        "observed": observed,
        "twin_mean": mean,
        "rel_error": abs(mean - observed) / abs(observed) if observed else math.inf,
        "allowed": allowed,
        "ok": abs(mean - observed) <= allowed,
    }


def _energy_entry(
    energy: tuple[float, str], good: int, twin: list[float | None], tolerance: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Recorded and simulated energy per good part (kWh), and its check when both exist (every
    replication made good parts and the line recorded some)."""
    kwh, basis = energy
    entry: dict[str, Any] = {"observed_kwh": kwh, "basis": basis, "good_parts": good}
    values = [value for value in twin if value is not None]
    if good > 0:
        entry["observed_per_good_part_kwh"] = kwh / good
    if values:
        entry["twin_per_good_part_kwh"] = float(np.mean(values))
        entry["twin_ci95"] = half_width(values)
    if good == 0 or not values or len(values) < len(twin):
        return entry, None
    check = _check(kwh / good, values, tolerance)
    entry["rel_error"] = check["rel_error"]
    return entry, check


def observed_line_wip(records: list[StationRecord], window_s: float) -> tuple[float | None, str]:
    """The line's time-average WIP and what it was computed from: `OccupancySeconds` (the
    counters' growth) or `Occupancy` (the sampled values, with a warning)."""
    counted = counted_wip(records, window_s)
    if counted is not None:
        return counted, "OccupancySeconds"
    sampled = line_wip(records, window_s)
    if sampled is not None:
        log.warning(
            "WIP: not every station sent OccupancySeconds; the line's WIP is averaged from the "
            "sampled Occupancy values, noisier than the twin's exact time average"
        )
    return sampled, "Occupancy"


def observed_exits(line: Line, records: dict[str, StationRecord]) -> int:
    """Good parts that left the line: the events that say so (`to: exit`) when every station's events
    say where their parts went, else the good parts finished at the last station."""
    recorded = [records[station.name] for station in line.stations if station.name in records]
    if (
        recorded
        and len(recorded) == len(line.stations)
        and all(len(record.goes_to) == len(record.scrapped) for record in recorded)
    ):
        return sum(record.goes_to.count(TO_EXIT) for record in recorded)
    last = line.stations[-1].name
    return sum(1 for scrapped in records[last].scrapped if not scrapped) if last in records else 0


def validate(
    line: Line,
    records: dict[str, StationRecord],
    window_s: float,
    *,
    replications: int = 10,
    tolerance: float = 0.05,
    seed: int | None = None,
) -> dict[str, Any]:
    """The validation record (the JSON of `fabbrica twin validate`)."""
    observed_throughput = observed_exits(line, records) / window_s * 3600
    base_seed = line.seed if seed is None else seed
    runs = [
        simulate(line, seed=base_seed + r, horizon=line.warmup + window_s, warmup=line.warmup).kpis
        for r in range(replications)
    ]
    throughputs = [run["throughput_per_hour"] for run in runs]
    twin_mean = float(np.mean(throughputs))
    checks = {"throughput": _check(observed_throughput, throughputs, tolerance)}
    stations: dict[str, Any] = {}
    observed_kwh: dict[str, float] = {}
    for station in line.stations:
        shares = {state: [run["stations"][station.name][state] for run in runs] for state in REPORTED_STATES}
        entry: dict[str, Any] = {"twin": {state: float(np.mean(v)) for state, v in shares.items()}}
        record = records.get(station.name)
        entry["observed"] = record.state_shares(window_s) if record is not None and record.states else {}
        observed = entry["observed"]
        comparable = station.capacity == 1 or (record is not None and bool(record.machines))
        if observed and comparable and observed["working"] >= 0.05:
            checks[f"{station.name}.working"] = _check(observed["working"], shares["working"], tolerance)
        for state in CHECKED_SHARES:
            if observed and comparable and max(observed[state], entry["twin"][state]) >= SHARE_FLOOR:
                checks[f"{station.name}.{state}"] = _check(observed[state], shares[state], tolerance)
        # good parts per hour; a station without records is shown, not checked
        rates = [run["stations"][station.name]["parts_out"] / window_s * 3600 for run in runs]
        entry["throughput"] = {"twin_mean": float(np.mean(rates)), "twin_ci95": half_width(rates)}
        if record is not None:
            good = sum(1 for scrapped in record.scrapped if not scrapped)
            entry["throughput"]["observed"] = good / window_s * 3600
            if line.is_network and good > 0:
                check = checks[f"{station.name}.throughput"] = _check(
                    good / window_s * 3600, rates, tolerance
                )
                entry["throughput"]["rel_error"] = check["rel_error"]
        energy = observed_energy(record, window_s) if record is not None else None
        if energy is not None:
            observed_kwh[station.name] = energy[0]
            good = sum(1 for scrapped in record.scrapped if not scrapped) if record is not None else 0
            per_part = [run["stations"][station.name]["energy_per_good_part_kwh"] for run in runs]
            entry["energy"], check = _energy_entry(energy, good, per_part, tolerance)
            if check is not None and station.power is not None:  # shown, not checked, without `power:`
                checks[f"{station.name}.energy_per_good_part"] = check
        stations[station.name] = entry
    rel_error = checks["throughput"]["rel_error"]
    result: dict[str, Any] = {
        "throughput": {
            "observed": observed_throughput,
            "twin_mean": twin_mean,
            "twin_ci95": half_width(throughputs),
            "rel_error": rel_error,
        }
    }
    observed_wip, wip_basis = observed_line_wip(
        [records[s.name] for s in line.stations if s.name in records], window_s
    )
    if observed_wip is not None and len(records) == len(line.stations):
        wips = [run["wip_mean"] for run in runs]
        checks["wip"] = _check(observed_wip, wips, tolerance)
        result["wip"] = {
            "observed": observed_wip,
            "twin_mean": float(np.mean(wips)),
            "twin_ci95": half_width(wips),
            "rel_error": checks["wip"]["rel_error"],
            "basis": wip_basis,
        }
    # the line's energy per good part, when every station the twin counts energy for was metered
    powered = [station.name for station in line.stations if station.power is not None]
    metered = all(name in observed_kwh for name in powered)
    if powered and metered:
        per_part = [run["energy_per_good_part_kwh"] for run in runs]
        total = (sum(observed_kwh[name] for name in powered), "stations")
        result["energy"], check = _energy_entry(total, observed_exits(line, records), per_part, tolerance)
        if check is not None:
            checks["energy_per_good_part"] = check
    verdict_ok = all(check["ok"] for check in checks.values())
    return {
        **result,
        "stations": stations,
        "verdict": "valid" if verdict_ok else "invalid",
        "tolerance": tolerance,
        "replications": replications,
        "window_s": window_s,
        "checks": checks,
    }

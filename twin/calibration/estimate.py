"""Estimating each station's cycle times, breakdowns, set-ups and scrap from its recorded history.

- cycle times: per product (when the prior line has per-product times) or pooled, fitted by
  maximum likelihood and chosen by AIC (`twin.calibration.fit`);
- breakdowns: the number of down periods that start in the window over the exposure (working time
  for `basis: operating`, up time for `basis: calendar`) gives the MTBF (the censored exponential
  maximum-likelihood estimate); the failure clock from each repair to the next failure (censored at
  the window's end) chooses between that exponential and a Weibull (`fit_times_to_failure`), so a
  machine that wears out is calibrated as one; the complete down periods give the repair-time
  distribution;
- set-ups: the complete set-up periods, but for those right after an `off` (restarts);
  scrap: scrapped over processed parts, with its 95 % Wilson interval;
- power per state (`twin.calibration.energy`): least squares of the energy meter's increments (or the
  power signal's samples) on the machine-hours in each power group, with standard errors;
- switch-off: the starved time before a machine went `off` (its minimum) and the set-ups that
  followed (the restarts);
- preventive maintenance (`twin.calibration.maintenance`): the operating time or parts from a
  renewal to each service, and the services' durations; a service renews the failure clock, so the
  time to failure it cut short is a censored one;
- rework (a line that is a network): the good parts sent back over the good parts finished, with
  its 95 % Wilson interval, and where they were sent (the part events' `reworked` and `to`);
- the release of a line with `interarrival` release: the gaps between the orders counted at the
  first station (`PartsReleased`), fitted like cycle times;
- routes: per product, the shares of its parts going from each station to the next, and its route
  where it is one way (`twin.calibration.routing`), reported at the station where it enters.

Too little data for a quantity keeps the prior value and says so in a warning.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.calibration.energy import PowerEstimate, fit_power, switch_off_events
from twin.calibration.fit import FitReport, fit_durations, fit_times_to_failure
from twin.calibration.maintenance import MaintenanceEstimate, estimate_maintenance
from twin.calibration.records import StationRecord
from twin.calibration.routing import RouteEstimate, calibrate_routes, estimate_routes

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default): (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Limits:
    """The least data that counts as evidence for each estimate."""

    cycle_samples: int = 30
    failures: int = 5
    setups: int = 5
    scrap_parts: int = 50
    rework_parts: int = 50
    route_parts: int = 20
    services: int = 5  # preventive maintenances with a known age
    restarts: int = 5  # restarts after a switch-off
    energy_readings: int = 10  # meter increments or power samples


@dataclass
class StationCalibration:
    """What was estimated for one station, and from how much data."""

    name: str
    cycle_fits: dict[str, FitReport] = field(default_factory=dict)
    failures_observed: int = 0
    exposure_s: float = 0.0
    mtbf_s: float | None = None
    failure_fit: FitReport | None = (
        None  # exponential or Weibull, from the times between repairs and failures
    )
    repair_fit: FitReport | None = None
    setup_fit: FitReport | None = None
    parts: int = 0
    scrap_rate: float | None = None
    scrap_ci95: tuple[float, float] | None = None
    # rework: good parts finished whose events say where they went, those sent back, and where to
    rework_parts: int = 0
    reworked: int = 0
    rework_probability: float | None = None
    rework_ci95: tuple[float, float] | None = None
    rework_to: str | None = None
    release_fit: FitReport | None = None  # the first station of a line with interarrival release
    routes: dict[str, RouteEstimate] = field(default_factory=dict)  # products entering the line here
    power: PowerEstimate | None = None
    power_written: list[str] = field(default_factory=list)  # the groups written into `power:`
    maintenance: MaintenanceEstimate | None = None
    switch_offs: int = 0
    switch_off_after_s: float | None = None
    restart_fit: FitReport | None = None
    mixed_restarts: int = 0  # restarts followed by a changeover in the same set-up: left out
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A flat, JSON-ready summary for reports and YAML comments."""
        return {
            "station": self.name,
            "cycle_time": {
                product: {
                    "fit": fit.best.spec,
                    "n": fit.n,
                    "aic": fit.best.aic,
                    "ks": fit.best.ks_statistic,
                    "ks_pvalue": fit.best.ks_pvalue,
                }
                for product, fit in self.cycle_fits.items()
            },
            "failures": self.failures_observed,
            "mtbf_s": self.mtbf_s,
            "failure_fit": _failure_summary(self.failure_fit),
            "mttr_s": self.repair_fit.best.spec.get("mean") if self.repair_fit else None,
            "repair_fit": self.repair_fit.best.spec if self.repair_fit else None,
            "setup_fit": self.setup_fit.best.spec if self.setup_fit else None,
            "parts": self.parts,
            "scrap_rate": self.scrap_rate,
            "scrap_ci95": self.scrap_ci95,
            "rework": {
                "parts": self.rework_parts,
                "reworked": self.reworked,
                "probability": self.rework_probability,
                "ci95": self.rework_ci95,
                "to": self.rework_to,
            }
            if self.rework_parts
            else None,
            "release_fit": _release_summary(self.release_fit),
            "routes": {product: route.summary() for product, route in self.routes.items()},
            "power": {**self.power.summary(), "written": self.power_written} if self.power else None,
            "maintenance": self.maintenance.summary()
            if self.maintenance and self.maintenance.services
            else None,
            "switch_off": {
                "offs": self.switch_offs,
                "after_s": self.switch_off_after_s,
                "restart": self.restart_fit.best.spec if self.restart_fit else None,
                "restarts": self.restart_fit.n if self.restart_fit else 0,
                "with_changeover": self.mixed_restarts,
            }
            if self.switch_offs
            else None,
            "warnings": self.warnings,
        }


def _failure_summary(fit: FitReport | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        **fit.best.spec,
        "n": fit.n,
        "ci95": fit.best.ci95,
        "aic": {f.family: f.aic for f in fit.candidates},
    }


BROKEN = ("waiting_repair", "down")  # a failure: waiting for a technician, then under repair
NOT_EXPOSED = ("planned_stop",)  # a calendar failure clock stops with the line (twin.calendar)


def times_to_failure(
    intervals: list[tuple[str, float, float]], basis: str, window_s: float
) -> tuple[list[float], list[float]]:
    """One machine's failure clock between renewals: (complete, censored) times to failure.

    A repair's end renews the machine (the twin's repairs are as good as new), and so does the end of
    a preventive service; the clock (the working time with `basis: operating`, the up time with
    `basis: calendar`, planned stops left out) runs from there to the next failure (the start of a
    wait for a technician, or of a repair): a complete time. A service that comes first cuts the
    clock short: a censored time, as is the clock still running at the window's end. The time
    before the first renewal in the window is left out, since the machine's age at the window's
    start is unknown.
    """
    complete: list[float] = []
    censored: list[float] = []
    clock: float | None = None  # failure-clock time since the last renewal (None: age unknown)
    previous: str | None = None
    for state, start, end in intervals:
        if state in BROKEN:
            if previous not in BROKEN and start > 0 and clock is not None and clock > 0:
                complete.append(clock)
            clock = 0.0 if end < window_s else None
        elif state == "maintenance":
            if start > 0 and clock:
                censored.append(clock)
            clock = 0.0 if end < window_s else None
        elif clock is not None and (state == "working" if basis == "operating" else state not in NOT_EXPOSED):
            clock += end - start
        previous = state
    if clock:
        censored.append(clock)
    return complete, censored


def _release_summary(fit: FitReport | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {**fit.best.spec, "n": fit.n, "ks_statistic": fit.best.ks_statistic}


def calibrate_station(
    prior: dict[str, Any], record: StationRecord, window_s: float, products: list[str], limits: Limits
) -> tuple[dict[str, Any], StationCalibration]:
    """A calibrated copy of one station's definition, and what it was estimated from."""
    station = copy.deepcopy(prior)
    result = StationCalibration(name=record.name)
    cycle = np.asarray(record.cycle_times, dtype=float)
    made = np.asarray(record.products)
    per_product = isinstance(prior.get("cycle_time"), dict) and "dist" not in prior["cycle_time"]
    groups = {p: cycle[made == p] for p in products} if per_product else {"*": cycle}
    fitted: dict[str, Any] = {}
    for product, samples in groups.items():
        if len(samples) < limits.cycle_samples:
            result.warnings.append(
                f"{record.name}: only {len(samples)} cycle times"
                + ("" if product == "*" else f" for product {product}")
                + f" (< {limits.cycle_samples}); keeping the prior cycle time"
            )
            continue
        report = fit_durations(samples)
        result.cycle_fits[product] = report
        fitted[product] = report.best.spec
    if per_product and fitted:
        station["cycle_time"] = {**station["cycle_time"], **fitted}
    elif "*" in fitted:
        station["cycle_time"] = fitted["*"]

    # breakdowns, repairs and set-ups happen to machines: with parallel machines each has its history
    histories = record.state_histories()
    basis = (prior.get("failures") or {}).get("basis", "operating")
    down_starts: list[float] = []
    exposure = 0.0
    repair_parts, setup_parts, restart_parts = [], [], []
    idle_before_off: list[float] = []
    complete: list[float] = []
    censored: list[float] = []
    for history in histories:
        intervals = history.intervals(window_s)
        done, cut = times_to_failure(intervals, basis, window_s)
        complete += done
        censored += cut
        down_starts += [
            start
            for k, (state, start, _) in enumerate(intervals)
            if state in BROKEN and start > 0 and (k == 0 or intervals[k - 1][0] not in BROKEN)
        ]
        if basis == "operating":
            exposure += sum(end - start for state, start, end in intervals if state == "working")
        else:
            exposure += sum(
                end - start
                for state, start, end in intervals
                if state not in BROKEN and state not in NOT_EXPOSED
            )
        repair_parts.append(history.durations("down", window_s))
        # a set-up right after `off` is a restart (switch_off.restart), not a changeover
        offs = switch_off_events(intervals, window_s)
        restarts = set(offs.restarts)
        setup_parts.append(
            np.array(
                [
                    end - start
                    for state, start, end in intervals
                    if state == "setup" and start > 0 and end < window_s and (start, end) not in restarts
                ]
            )
        )
        restart_parts.append(offs.restarts)
        idle_before_off += offs.idle_before_off
        result.switch_offs += offs.offs
    repairs = np.concatenate(repair_parts)
    setups = np.concatenate(setup_parts)
    changeovers = len(setups) > 0 or prior.get("setup") is not None
    restart_times = _pure_restarts(
        [interval for found in restart_parts for interval in found], record, len(histories) == 1, changeovers
    )
    result.mixed_restarts = sum(len(found) for found in restart_parts) - len(restart_times)
    result.failures_observed, result.exposure_s = len(down_starts), exposure
    if len(down_starts) >= limits.failures and len(repairs) >= 2:
        result.mtbf_s = exposure / len(down_starts)
        result.repair_fit = fit_durations(repairs)
        repair = result.repair_fit.best.spec
        failures: dict[str, Any] = {"mtbf": result.mtbf_s, "basis": basis}
        if len(complete) >= limits.failures:
            result.failure_fit = fit_times_to_failure(complete, censored)
            if result.failure_fit.best.family == "weibull":
                ttf = result.failure_fit.best.spec
                result.mtbf_s = ttf["mean"]
                failures = {"ttf": ttf, "basis": basis}
        if repair["dist"] == "exponential":
            failures["mttr"] = repair["mean"]
        else:
            failures["ttr"] = repair
        station["failures"] = failures
    elif down_starts or prior.get("failures"):
        result.warnings.append(
            f"{record.name}: only {len(down_starts)} breakdowns (< {limits.failures}); "
            "keeping the prior failures"
        )
    if station.get("capacity", 1) > 1 and not record.machines:
        result.warnings.append(
            f"{record.name}: {station['capacity']} machines but only the station's aggregate state was "
            "recorded (no MachineNState); breakdowns and repairs of overlapping machines are merged"
        )

    if len(setups) >= limits.setups:
        result.setup_fit = fit_durations(setups)
        station["setup"] = result.setup_fit.best.spec
    elif prior.get("setup") is not None:
        result.warnings.append(
            f"{record.name}: only {len(setups)} set-ups (< {limits.setups}); keeping the prior"
        )

    _calibrate_switch_off(station, prior, result, idle_before_off, restart_times, limits)
    _calibrate_maintenance(station, prior, record, result, window_s, basis, limits)
    _calibrate_power(station, prior, record, result, window_s, limits)

    result.parts = len(record.scrapped)
    if result.parts >= limits.scrap_parts:
        scrapped = int(np.sum(record.scrapped))
        result.scrap_rate = scrapped / result.parts
        result.scrap_ci95 = wilson_interval(scrapped, result.parts)
        if result.scrap_rate > 0 or prior.get("scrap"):
            station["scrap"] = result.scrap_rate
    elif prior.get("scrap"):
        result.warnings.append(
            f"{record.name}: only {result.parts} parts (< {limits.scrap_parts}); keeping the scrap rate"
        )
    _calibrate_rework(station, prior, record, result, limits)
    return station, result


def _pure_restarts(
    restarts: list[tuple[float, float]], record: StationRecord, single: bool, changeovers: bool
) -> np.ndarray:
    """The durations of the restarts that are restarts only.

    A machine that finds a part of another product after a restart changes over too, and the PLC
    shows both as one set-up. On a station of one machine whose parts name their product, the part
    loaded at the restart is the first one finished after it, and the last one finished before it
    was the machine's last product: when they differ (and the station changes over), that set-up is
    left out of both the restarts and the changeovers.
    """
    durations = [end - start for start, end in restarts]
    if not (single and changeovers and record.products and len(set(record.products)) > 1):
        return np.asarray(durations, dtype=float)
    times = np.asarray(record.part_times, dtype=float)
    order = np.argsort(times, kind="stable")
    times, products = times[order], [record.products[k] for k in order]
    pure = []
    for (start, end), duration in zip(restarts, durations, strict=True):
        before = int(np.searchsorted(times, start, side="right")) - 1
        after = int(np.searchsorted(times, end, side="left"))
        if before >= 0 and after < len(times) and products[before] == products[after]:
            pure.append(duration)
    return np.asarray(pure, dtype=float)


def _calibrate_switch_off(
    station: dict[str, Any],
    prior: dict[str, Any],
    result: StationCalibration,
    idle_before_off: list[float],
    restarts: np.ndarray,
    limits: Limits,
) -> None:
    """`switch_off: {after, restart}`: after = the least starved time seen before a machine went off
    (the twin switches off after exactly that long), restart = the set-ups that followed an `off`."""
    name = result.name
    if not result.switch_offs:
        if prior.get("switch_off") is not None:
            result.warnings.append(
                f"{name}: no machine switched off in the window; keeping the prior switch_off"
            )
        return
    if idle_before_off:
        result.switch_off_after_s = float(min(idle_before_off))
    if len(restarts) >= 2:
        result.restart_fit = fit_durations(restarts)
    if result.switch_off_after_s is None or len(restarts) < limits.restarts or result.restart_fit is None:
        keep = (
            "keeping the prior switch_off" if prior.get("switch_off") is not None else "no switch_off written"
        )
        result.warnings.append(
            f"{name}: {result.switch_offs} switch-offs, {len(restarts)} restarts (< {limits.restarts}) "
            f"or no idle time seen before one; {keep}"
        )
        return
    station["switch_off"] = {"after": result.switch_off_after_s, "restart": result.restart_fit.best.spec}


def _calibrate_maintenance(
    station: dict[str, Any],
    prior: dict[str, Any],
    record: StationRecord,
    result: StationCalibration,
    window_s: float,
    basis: str,
    limits: Limits,
) -> None:
    """`maintenance: {every | parts, duration}` from the services seen (`twin.calibration.maintenance`)."""
    before = prior.get("maintenance") or {}
    trigger = "parts" if "parts" in before else "every" if "every" in before else None
    estimate = result.maintenance = estimate_maintenance(record, window_s, trigger, limits.services)
    name = result.name
    if not estimate.services:
        if before:
            result.warnings.append(f"{name}: no preventive maintenance in the window; keeping the prior")
        return
    if estimate.trigger is None or estimate.value is None or estimate.duration_fit is None:
        keep = "keeping the prior maintenance" if before else "no maintenance written"
        result.warnings.append(
            f"{name}: {estimate.services} services, {len(estimate.operating)} after a renewal seen "
            f"(< {limits.services}); {keep}"
        )
        return
    if basis == "calendar" and station.get("failures") is not None:
        result.warnings.append(
            f"{name}: the failures run on calendar time, and maintenance renews an operating age; "
            "no maintenance written"
        )
        return
    value: float | int = int(estimate.value) if estimate.trigger == "parts" else estimate.value
    station["maintenance"] = {estimate.trigger: value, "duration": estimate.duration_fit.best.spec}


def _calibrate_power(
    station: dict[str, Any],
    prior: dict[str, Any],
    record: StationRecord,
    result: StationCalibration,
    window_s: float,
    limits: Limits,
) -> None:
    """`power:` kW per group from the energy readings (`twin.calibration.energy`). A group's estimate
    is written when its 95 % interval is within ±50 % of it or ±0.1 kW; otherwise, and for groups
    the readings never saw, the prior's value stays."""
    name = result.name
    estimate = fit_power(record, window_s, int(station.get("capacity", 1)))
    if estimate is None:
        return
    result.power = estimate
    result.warnings.extend(f"{name}: power: {warning}" for warning in estimate.warnings)
    if estimate.n < limits.energy_readings:
        result.warnings.append(
            f"{name}: only {estimate.n} energy readings (< {limits.energy_readings}); keeping the prior power"
        )
        return
    power = dict(prior.get("power") or {})
    for group, kw in estimate.kw.items():
        low, high = estimate.ci95(group)
        if (high - low) / 2 > max(0.5 * abs(kw), 0.1):
            result.warnings.append(
                f"{name}: power.{group} {kw:.3g} kW is uncertain (95 % {low:.3g}..{high:.3g}); "
                + ("keeping the prior" if group in power else "not written")
            )
            continue
        if kw < 0:
            result.warnings.append(f"{name}: power.{group} came out {kw:.3g} kW; written as 0")
            kw = 0.0
        power[group] = kw
        result.power_written.append(group)
    if "working" not in power:
        result.warnings.append(f"{name}: the working power could not be estimated; no power written")
        return
    station["power"] = power


def _calibrate_rework(
    station: dict[str, Any],
    prior: dict[str, Any],
    record: StationRecord,
    result: StationCalibration,
    limits: Limits,
) -> None:
    """The share of good parts sent back for rework, and where to, from the part events.

    Each good part is sent back independently with the rework probability (a Bernoulli draw of its
    own), so the count sent back is binomial and its Wilson interval holds the probability with
    95 % confidence. Scrapped parts are not drawn for rework and are left out.
    """
    if not record.reworked or len(record.reworked) != len(record.scrapped):
        return  # events without `reworked` (a chain's recording before issue 17): nothing to say
    events = zip(record.goes_to, record.reworked, record.scrapped, strict=True)
    good = [(to, back) for to, back, gone in events if not gone]
    result.rework_parts = len(good)
    result.reworked = sum(1 for _, back in good if back)
    if not result.reworked and not prior.get("rework"):
        return
    result.rework_ci95 = wilson_interval(result.reworked, result.rework_parts)
    result.rework_probability = result.reworked / result.rework_parts if result.rework_parts else None
    targets = Counter(to for to, back in good if back)
    if targets:
        result.rework_to = targets.most_common(1)[0][0]
        if len(targets) > 1:
            went = ", ".join(f"{to} ({n})" for to, n in targets.items())
            result.warnings.append(
                f"{record.name}: reworked parts went to {went}; writing the most: {result.rework_to}"
            )
    if result.rework_parts < limits.rework_parts:
        result.warnings.append(
            f"{record.name}: only {result.rework_parts} good parts (< {limits.rework_parts});"
            " keeping the prior rework"
        )
        return
    if not result.reworked:
        low, high = result.rework_ci95
        result.warnings.append(
            f"{record.name}: none of {result.rework_parts} good parts was sent back (95 % interval of the"
            f" probability {low:.4f}..{high:.4f}); keeping the prior rework"
        )
        return
    station["rework"] = {"probability": result.rework_probability, "to": result.rework_to}


def calibrate_line(
    prior: dict[str, Any], records: dict[str, StationRecord], window_s: float, limits: Limits | None = None
) -> tuple[dict[str, Any], list[StationCalibration]]:
    """A calibrated copy of the line definition `prior` (plain data) and the per-station results."""
    limits = limits or Limits()
    line = copy.deepcopy(prior)
    products = [p["name"] for p in prior.get("products") or [{"name": "default"}]]
    results = []
    for index, station in enumerate(prior["stations"]):
        record = records.get(station["name"])
        if record is None:
            result = StationCalibration(
                name=station["name"], warnings=[f"{station['name']}: no data; kept as is"]
            )
            results.append(result)
            continue
        line["stations"][index], result = calibrate_station(station, record, window_s, products, limits)
        results.append(result)
    _calibrate_release(line, records.get(prior["stations"][0]["name"]), results[0], window_s, limits)
    _keep_loadable_rework(line, prior, results)
    routes = estimate_routes(records)
    if routes:
        warnings = calibrate_routes(line, routes, limits.route_parts)
        by_name = {result.name: result for result in results}
        for product, route in routes.items():
            entry = by_name.get(route.entry or "", results[0])
            entry.routes[product] = route
        results[0].warnings.extend(warnings)
    return line, results


def _keep_loadable_rework(
    line: dict[str, Any], prior: dict[str, Any], results: list[StationCalibration]
) -> None:
    """Put the prior rework back if the observed one does not fit the line (a part sent back where
    the line's graph or routes cannot take it), with a warning at each station it changed."""
    from foundation.errors import InputError
    from twin.line import line_from_dict

    changed = [
        index
        for index, (station, before) in enumerate(zip(line["stations"], prior["stations"], strict=True))
        if station.get("rework") != before.get("rework")
    ]
    if not changed:
        return
    try:
        line_from_dict(line, "<calibrated>")
        return
    except InputError as error:
        problem = str(error)
    for index in changed:
        station, before = line["stations"][index], prior["stations"][index]
        if before.get("rework") is None:
            del station["rework"]
        else:
            station["rework"] = copy.deepcopy(before["rework"])
        results[index].warnings.append(
            f"{station['name']}: the observed rework does not fit the line ({problem}); keeping the prior"
        )


def _calibrate_release(
    line: dict[str, Any],
    record: StationRecord | None,
    result: StationCalibration,
    window_s: float,
    limits: Limits,
) -> None:
    """Fit the interarrival times of a line with `interarrival` release from its counted orders."""
    release = line.get("release")
    if not (isinstance(release, dict) and "interarrival" in release):
        return  # saturated lines have no rate; a conwip cap is a policy, not a measurement
    times = np.sort(np.asarray(record.release_times if record is not None else [], dtype=float))
    gaps = np.diff(times[(times >= 0) & (times <= window_s)])
    if len(gaps) < limits.cycle_samples:
        result.warnings.append(
            f"release: only {len(gaps)} order gaps counted (PartsReleased, < {limits.cycle_samples}); "
            "keeping the prior interarrival time"
        )
        return
    # orders counted at one instant (a counter that jumped by more than one) are gaps of zero:
    # they belong to the data, but no positive family fits them, so they are fitted at a tick
    positive = np.maximum(gaps, 1e-6)
    result.release_fit = fit_durations(positive)
    line["release"] = {**release, "interarrival": result.release_fit.best.spec}

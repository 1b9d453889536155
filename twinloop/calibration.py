"""Calibration and validation: the twin fitted to what the line recorded, and checked against it.

History comes in through a sink's reader (twinloop.history) as the twin's records; the twin
(twin.calibration) estimates cycle times, breakdowns, set-ups, scrap, rework, routes, power per state,
preventive maintenance and switch-off (the repair crew is the line file's, a given), or runs the
line over the recorded window and compares. What comes out is a commented, loadable line file with its JSON
report beside it, or a validation record that twinloop.results turns into points.
`fabbrica twin calibrate` and `fabbrica twin validate` only parse, call and print.

    results, report = calibrate_from_source(Path("line.yaml"), "historian.duckdb", Path("out/cal.yaml"))
    line, result = validate_from_source(Path("out/cal.yaml"), "historian.duckdb", replications=10)
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from twin.line import Line, line_from_dict, load_line, read_yaml

if TYPE_CHECKING:  # scipy and pandas load only when a command needs them: `fabbrica connect` stays light
    from twin.calibration.estimate import StationCalibration
    from twin.calibration.routing import RouteEstimate


def calibrate_from_source(
    line_file: Path,
    source: str,
    out: Path,
    *,
    start: str | None = None,
    end: str | None = None,
    speed: float | None = None,
) -> tuple[list[StationCalibration], Path]:
    """Read SOURCE's window, calibrate the prior LINE_FILE, write `out` and its report (InputError if bad)."""
    from twinloop.history import load_records, open_source, parse_time

    prior_data = read_yaml(line_file)
    prior = line_from_dict(prior_data, str(line_file))
    read = open_source(source)
    records, window, used_speed, first, last = load_records(
        read, prior, parse_time(start, "--start"), parse_time(end, "--end"), speed
    )
    return write_calibration(prior_data, records, window, out, source, first, last, used_speed)


def validate_from_source(
    line_file: Path,
    source: str,
    *,
    start: str | None = None,
    end: str | None = None,
    speed: float | None = None,
    replications: int = 10,
    tolerance: float = 0.05,
) -> tuple[Line, dict[str, Any]]:
    """Run the twin of LINE_FILE over SOURCE's recorded window and compare (twin.calibration.validate)."""
    from twin.calibration.validate import validate
    from twinloop.history import load_records, open_source, parse_time

    line = load_line(line_file)
    read = open_source(source)
    records, window, _, _, _ = load_records(
        read, line, parse_time(start, "--start"), parse_time(end, "--end"), speed
    )
    return line, validate(line, records, window, replications=replications, tolerance=tolerance)


def write_calibration(
    prior_data: dict[str, Any],
    records: dict[str, Any],
    window: float,
    out: Path,
    source: str,
    first: datetime,
    last: datetime,
    speed: float,
) -> tuple[list[StationCalibration], Path]:
    """Calibrate, write the commented line file `out` and its JSON report beside it."""
    from twin.calibration.estimate import calibrate_line

    calibrated, results = calibrate_line(prior_data, records, window)
    line_from_dict(calibrated, str(out))  # what we write must load
    header = _header(source, first, last, window, speed, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + yaml.safe_dump(calibrated, sort_keys=False, allow_unicode=True))
    report_path = out.with_suffix(".report.json")
    report = {
        "source": source,
        "window": {"start": first.isoformat(), "end": last.isoformat(), "line_seconds": window},
        "speed": speed,
        "stations": [result.summary() for result in results],
        "routes": {
            product: route.summary() for result in results for product, route in result.routes.items()
        },
    }
    report_path.write_text(json.dumps(report, indent=2, default=float))
    return results, report_path


def _header(
    source: str,
    first: datetime,
    last: datetime,
    window: float,
    speed: float,
    results: list[StationCalibration],
) -> str:
    lines = [
        "# Calibrated by `fabbrica twin calibrate`",
        f"# source: {source}",
        f"# data window: {first.isoformat()} .. {last.isoformat()}",
        f"#   {window / 3600:.2f} h of line time, recorded at speed {speed:g}",
    ]
    for result in results:
        fits = ", ".join(
            f"{product_label(product)}: {fit.best.family} n={fit.n} KS={fit.best.ks_statistic:.3f}"
            for product, fit in result.cycle_fits.items()
        )
        repair = f"{result.repair_fit.best.family} n={result.repair_fit.n}" if result.repair_fit else "prior"
        lines.append(
            f"# {result.name}: {fits or 'cycle time: prior'}; breakdowns {result.failures_observed}"
            f"{_failure_label(result)}, "
            f"repair {repair}; parts {result.parts}"
        )
        if result.rework_probability is not None and result.rework_ci95 is not None:
            low, high = result.rework_ci95
            lines.append(
                f"#   rework: {result.reworked} of {result.rework_parts} good parts sent back to"
                f" {result.rework_to or '-'}: p = {result.rework_probability:.4f}"
                f" (95 % {low:.4f}..{high:.4f})"
            )
        for product, route in result.routes.items():
            lines.append(f"#   route of {product} ({route.parts} parts from here): {route_label(route)}")
        lines.extend(_plant_lines(result))
        if result.release_fit is not None:
            fit = result.release_fit
            lines.append(
                f"#   release: interarrival {fit.best.family} mean {fit.mean:.1f}s "
                f"n={fit.n} KS={fit.best.ks_statistic:.3f} (PartsReleased)"
            )
        lines.extend(f"#   warning: {warning}" for warning in result.warnings)
    return "\n".join(lines) + "\n"


def _plant_lines(result: StationCalibration) -> list[str]:
    """The header's lines on power, maintenance and switch-off, where the records held them."""
    out = []
    power = result.power
    if power is not None and power.kw:
        groups = ", ".join(
            f"{group} {power.kw[group]:.3g}±{(power.ci95(group)[1] - power.kw[group]):.2g}"
            + ("" if group in result.power_written else " (not written)")
            for group in power.kw
        )
        source = "meter increments" if power.basis == "energy" else "Power samples"
        out.append(f"#   power kW (95 %): {groups}; {power.n} {source}")
    service = result.maintenance
    if service is not None and service.services:
        fit = service.duration_fit
        every = (
            f"every {service.value:g} parts"
            if service.trigger == "parts"
            else f"every {service.value / 3600:.3g} h of work"
            if service.value is not None
            else "interval: too few"
        )
        duration = (
            f"{fit.best.family} mean {fit.report_mean:.0f}s" if fit is not None else "duration: too few"
        )
        out.append(f"#   maintenance: {service.services} services, {every}, {duration}")
    if result.switch_offs:
        after = "-" if result.switch_off_after_s is None else f"{result.switch_off_after_s:g}s"
        restart = result.restart_fit
        restarts = (
            f"{restart.best.family} mean {restart.report_mean:.1f}s n={restart.n}" if restart else "too few"
        )
        out.append(
            f"#   switch-off: {result.switch_offs} offs after {after} idle; restart {restarts}"
            + (f" ({result.mixed_restarts} with a changeover left out)" if result.mixed_restarts else "")
        )
    return out


def route_label(route: RouteEstimate) -> str:
    """One line: the route found (and whether it was written), or why none, with the shares."""
    if route.route is not None:
        return " > ".join(route.route) + (" (written)" if route.written else " (as the prior line)")
    shares = "; ".join(
        f"{at}: " + ", ".join(f"{to} {share:.1%}" for to, share in onward.items())
        for at, onward in route.shares.items()
    )
    return f"no one route: {route.reason}; shares {shares}"


def product_label(product: str) -> str:
    """How a product's fit is named: `cycle` for the one fit over all products."""
    return "cycle" if product == "*" else product


def _failure_label(result: StationCalibration) -> str:
    """' (weibull shape 2.57, 95 % 2.37..2.77)' when the times to failure were fitted, else ''."""
    fit = result.failure_fit
    if fit is None:
        return ""
    if fit.best.family != "weibull":
        return f" ({fit.best.family})"
    low, high = fit.best.ci95["shape"]
    return f" (weibull shape {fit.best.spec['shape']:.2f}, 95 % {low:.2f}..{high:.2f})"

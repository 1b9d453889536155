"""`fabbrica twin calibrate` and `fabbrica twin validate`: closing the loop between line and twin.

The commands parse, call twinloop.calibration and print; the loop itself lives there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from fabbrica import sink_options as so
from fabbrica.errors import bad_input_exits
from fabbrica.twin_commands import twin_app
from twin.station import REPORTED_STATES
from twinloop.calibration import product_label, route_label

if TYPE_CHECKING:  # scipy and pandas load only when a command needs them: `fabbrica connect` stays light
    from twin.calibration.estimate import StationCalibration

SOURCE_HELP = (
    "historian.duckdb, http://HOST:PORT/DATABASE (InfluxDB 1.x) or a YAML file with a `sink:` section "
    "(a connector config)"
)


def _stderr() -> Console:
    return Console(stderr=True, width=None if sys.stderr.isatty() else 140)


@twin_app.command("calibrate")
def calibrate(
    line_file: Path = typer.Option(..., "--line", help="The prior line definition (YAML)."),
    source: str = typer.Option(..., help=SOURCE_HELP),
    start: str | None = typer.Option(None, help="Window start, ISO-8601 UTC (default: first record)."),
    end: str | None = typer.Option(None, help="Window end, ISO-8601 UTC (default: last record)."),
    out: Path = typer.Option(..., help="Where to write the calibrated line file."),
    speed: float | None = typer.Option(
        None, min=0.0, help="Simulated seconds per recorded second (default: inferred; 1 for a real line)."
    ),
) -> None:
    """Estimate cycle times, breakdowns, set-ups, scrap, rework and routes from recorded data; write a
    calibrated line."""
    from twinloop.calibration import calibrate_from_source

    with bad_input_exits():
        results, report_path = calibrate_from_source(
            line_file, source, out, start=start, end=end, speed=speed
        )
    console = _stderr()
    for result in results:
        for warning in result.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
    _print_calibration(console, results)
    console.print(f"calibrated line: {out}\ncalibration report: {report_path}")


def _print_calibration(console: Console, results: list[StationCalibration]) -> None:
    table = Table(title="calibration")
    columns = ("station", "cycle time fit", "n", "MTBF (min)", "MTTR (min)", "breakdowns", "scrap", "rework")
    for column in columns:
        table.add_column(column, justify="left" if column in ("station", "cycle time fit") else "right")
    for result in results:
        fits = "; ".join(
            f"{product_label(p)}: {f.best.family} mean {f.report_mean:.1f}s"
            for p, f in result.cycle_fits.items()
        )
        n = sum(f.n for f in result.cycle_fits.values())
        mttr = result.repair_fit.best.spec.get("mean") if result.repair_fit else None
        table.add_row(
            result.name,
            fits or "prior",
            str(n),
            "-" if result.mtbf_s is None else f"{result.mtbf_s / 60:.1f}",
            "-" if mttr is None else f"{mttr / 60:.2f}",
            str(result.failures_observed),
            "-" if result.scrap_rate is None else f"{result.scrap_rate:.3%}",
            _rework(result),
        )
    console.print(table)
    for result in results:
        for product, route in result.routes.items():
            console.print(f"route of {product} ({route.parts} parts): {route_label(route)}")


def _rework(result: StationCalibration) -> str:
    """The estimated rework probability with its 95 % interval, and where parts went back to."""
    if result.rework_probability is None or result.rework_ci95 is None:
        return "-"
    low, high = result.rework_ci95
    return f"{result.rework_probability:.3%} [{low:.3%}, {high:.3%}] to {result.rework_to or '-'}"


@twin_app.command("validate")
def validate_command(
    line_file: Path = typer.Argument(
        ..., metavar="CALIBRATED.yaml", help="The (calibrated) line definition."
    ),
    source: str = typer.Option(..., help=SOURCE_HELP),
    start: str | None = typer.Option(None, help="Window start, ISO-8601 UTC (default: first record)."),
    end: str | None = typer.Option(None, help="Window end, ISO-8601 UTC (default: last record)."),
    replications: int = typer.Option(10, min=2, help="Independent twin runs over the window."),
    tolerance: float = typer.Option(0.05, min=0.0, help="Largest accepted relative error."),
    speed: float | None = typer.Option(None, min=0.0, help="Simulated seconds per recorded second."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    sink_config: so.SinkConfigOption = None,
    influx_url: so.InfluxUrlOption = None,
    influx_database: so.InfluxDatabaseOption = None,
    influx_token: so.InfluxTokenOption = None,
    influx_org: so.InfluxOrgOption = None,
    influx_bucket: so.InfluxBucketOption = None,
) -> None:
    """Run the twin over the recorded window and compare it with what the line did."""
    from twinloop.calibration import validate_from_source
    from twinloop.results import new_run_id, sink_options, validation_points, write_results

    with bad_input_exits():
        sink = sink_options(sink_config, influx_url, influx_database, influx_token, influx_org, influx_bucket)
        line, result = validate_from_source(
            line_file,
            source,
            start=start,
            end=end,
            speed=speed,
            replications=replications,
            tolerance=tolerance,
        )
    with bad_input_exits():
        points = validation_points(result, line=line.name, run_id=new_run_id())
        if (message := write_results(sink, points, "validation")) is not None:
            typer.echo(message, err=True)
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_validation(result)


def _print_validation(result: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    throughput = result["throughput"]
    console.print(
        f"throughput: observed {throughput['observed']:.2f}/h, twin {throughput['twin_mean']:.2f} "
        f"± {throughput['twin_ci95']:.2f}/h, relative error {throughput['rel_error']:.1%}"
    )
    if "wip" in result:
        wip = result["wip"]
        console.print(
            f"WIP (from {wip['basis']}): observed {wip['observed']:.2f} parts, twin {wip['twin_mean']:.2f} "
            f"± {wip['twin_ci95']:.2f}, relative error {wip['rel_error']:.1%}"
        )
    checks = result.get("checks", {})
    if "energy" in result:
        energy = result["energy"]
        console.print(
            f"energy per good part (every meter's kWh over the parts out): observed "
            f"{_kwh(energy.get('observed_per_good_part_kwh'))}, twin {_kwh_ci(energy)}"
            f"{_verdict(checks.get('energy_per_good_part'), energy)}"
        )
    table = Table(title="state shares: observed / twin")
    table.add_column("station")
    # the states the line or the twin spent time in (a line without a calendar has no planned stops)
    states = [
        state
        for state in REPORTED_STATES
        if any(
            (entry.get("observed") or {}).get(state, 0.0) or entry["twin"].get(state, 0.0)
            for entry in result["stations"].values()
        )
    ]
    for state in states:
        table.add_column(state, justify="right")
    for name, entry in result["stations"].items():
        observed = entry.get("observed") or {}
        cells = []
        for state in states:
            cell = f"{observed.get(state, float('nan')):.3f} / {entry['twin'].get(state, 0.0):.3f}"
            check = checks.get(f"{name}.{state}")
            cells.append(cell if check is None or check["ok"] else f"[red]{cell}[/]")
        table.add_row(name, *cells)
    console.print(table)
    outside = [
        f"{name} {state}"
        for name in result["stations"]
        for state in REPORTED_STATES
        if not checks.get(f"{name}.{state}", {"ok": True})["ok"]
    ]
    if outside:  # in red above, and said in words for a log
        console.print(f"state shares outside: [red]{', '.join(outside)}[/]")
    rates = Table(title="throughput per station (good parts/h): observed / twin ± 95 %")
    for column in ("station", "observed", "twin", "checked"):
        rates.add_column(column, justify="left" if column == "station" else "right")
    for name, entry in result["stations"].items():
        rate = entry.get("throughput") or {}
        check = result.get("checks", {}).get(f"{name}.throughput")
        rates.add_row(
            name,
            "-" if rate.get("observed") is None else f"{rate['observed']:.2f}",
            f"{rate.get('twin_mean', float('nan')):.2f} ± {rate.get('twin_ci95', float('nan')):.2f}",
            "-" if check is None else ("ok" if check["ok"] else "[red]outside[/]"),
        )
    console.print(rates)
    metered = {name: entry["energy"] for name, entry in result["stations"].items() if "energy" in entry}
    if metered:  # each metered station's kWh per good part, checked where it made good parts
        table = Table(title="energy per good part (kWh): observed / twin ± 95 %")
        for column in ("station", "from", "observed", "twin", "checked"):
            table.add_column(column, justify="left" if column in ("station", "from") else "right")
        for name, energy in metered.items():
            check = checks.get(f"{name}.energy_per_good_part")
            table.add_row(
                name,
                BASIS.get(energy.get("basis", ""), energy.get("basis", "-")),
                _kwh(energy.get("observed_per_good_part_kwh"), unit=""),
                _kwh_ci(energy, unit=""),
                "-" if check is None else ("ok" if check["ok"] else "[red]outside[/]"),
            )
        console.print(table)
    colour = "green" if result["verdict"] == "valid" else "red"
    console.print(f"verdict: [{colour}]{result['verdict']}[/] (tolerance {result['tolerance']:.0%})")


# what a station's observed energy came from (twin.calibration.energy.observed_energy)
BASIS = {"energy": "meter", "Power": "Power samples"}


def _kwh(value: float | None, unit: str = " kWh") -> str:
    return "-" if value is None else f"{value:.4g}{unit}"


def _kwh_ci(energy: dict[str, Any], unit: str = " kWh") -> str:
    """The twin's mean energy per good part ± its 95 % half-width."""
    mean = energy.get("twin_per_good_part_kwh")
    if mean is None:
        return "-"
    ci95 = energy.get("twin_ci95")
    return f"{mean:.4g}{unit}" if ci95 is None else f"{mean:.4g} ± {ci95:.2g}{unit}"


def _verdict(check: dict[str, Any] | None, entry: dict[str, Any]) -> str:
    """`, relative error 3.0 % (ok)` for a checked quantity, nothing for one only shown."""
    if check is None:
        return ""
    state = "ok" if check["ok"] else "[red]outside[/]"
    return f", relative error {entry.get('rel_error', check['rel_error']):.1%} ({state})"

"""`fabbrica twin calibrate` and `fabbrica twin validate`: closing the loop between line and twin."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from fabbrica import sink_options as so
from fabbrica.errors import bad_input_exits
from fabbrica.twin_commands import twin_app
from twin.line import line_from_dict, load_line, read_yaml
from twin.station import REPORTED_STATES

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
    """Estimate cycle times, breakdowns, set-ups and scrap from recorded data; write a calibrated line."""
    from fabbrica.sources import load_records, open_source, parse_time
    with bad_input_exits():
        prior_data = read_yaml(line_file)
        prior = line_from_dict(prior_data, str(line_file))
        read = open_source(source)
        records, window, used_speed, first, last = load_records(
            read, prior, parse_time(start, "--start"), parse_time(end, "--end"), speed
        )
    results, report_path = write_calibration(
        prior_data, records, window, out, source, first, last, used_speed
    )
    console = _stderr()
    for result in results:
        for warning in result.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
    _print_calibration(console, results)
    console.print(f"calibrated line: {out}\ncalibration report: {report_path}")


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
            f"{_label(product)}: {fit.best.family} n={fit.n} KS={fit.best.ks_statistic:.3f}"
            for product, fit in result.cycle_fits.items()
        )
        repair = f"{result.repair_fit.best.family} n={result.repair_fit.n}" if result.repair_fit else "prior"
        lines.append(
            f"# {result.name}: {fits or 'cycle time: prior'}; breakdowns {result.failures_observed}, "
            f"repair {repair}; parts {result.parts}"
        )
        if result.release_fit is not None:
            fit = result.release_fit
            lines.append(
                f"#   release: interarrival {fit.best.family} mean {fit.mean:.1f}s "
                f"n={fit.n} KS={fit.best.ks_statistic:.3f} (PartsReleased)"
            )
        lines.extend(f"#   warning: {warning}" for warning in result.warnings)
    return "\n".join(lines) + "\n"


def _label(product: str) -> str:
    return "cycle" if product == "*" else product


def _print_calibration(console: Console, results: list[StationCalibration]) -> None:
    table = Table(title="calibration")
    for column in ("station", "cycle time fit", "n", "MTBF (min)", "MTTR (min)", "breakdowns", "scrap"):
        table.add_column(column, justify="left" if column in ("station", "cycle time fit") else "right")
    for result in results:
        fits = "; ".join(
            f"{_label(p)}: {f.best.family} mean {f.report_mean:.1f}s" for p, f in result.cycle_fits.items()
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
        )
    console.print(table)


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
    from fabbrica.results_sink import new_run_id, sink_options, validation_points, write_results
    from fabbrica.sources import load_records, open_source, parse_time
    from twin.calibration.validate import validate

    with bad_input_exits():
        sink = sink_options(sink_config, influx_url, influx_database, influx_token, influx_org, influx_bucket)
        line = load_line(line_file)
        read = open_source(source)
        records, window, _, _, _ = load_records(
            read, line, parse_time(start, "--start"), parse_time(end, "--end"), speed
        )
    result = validate(line, records, window, replications=replications, tolerance=tolerance)
    with bad_input_exits():
        points = validation_points(result, line=line.name, run_id=new_run_id())
        if (message := write_results(sink, points, "validation")) is not None:
            typer.echo(message, err=True)
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_validation(result)


def _print_validation(result: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 140)
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
    table = Table(title="state shares: observed / twin")
    table.add_column("station")
    for state in REPORTED_STATES:
        table.add_column(state, justify="right")
    for name, entry in result["stations"].items():
        observed = entry.get("observed") or {}
        table.add_row(
            name,
            *(
                f"{observed.get(state, float('nan')):.3f} / {entry['twin'][state]:.3f}"
                for state in REPORTED_STATES
            ),
        )
    console.print(table)
    colour = "green" if result["verdict"] == "valid" else "red"
    console.print(f"verdict: [{colour}]{result['verdict']}[/] (tolerance {result['tolerance']:.0%})")

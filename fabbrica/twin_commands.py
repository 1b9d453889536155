"""`fabbrica twin ...`: run the twin of a line and print its KPIs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from fabbrica import sink_options as so
from fabbrica.errors import bad_input_exits, duration_option
from fabbrica.forecast_commands import forecast

if TYPE_CHECKING:
    from twin.kpi_catalogue import Kpi

twin_app = typer.Typer(help="Run, forecast, calibrate and validate the digital twin.", no_args_is_help=True)
twin_app.command("forecast")(forecast)


@twin_app.command("run")
def run(
    line_file: Path = typer.Argument(..., metavar="LINE.yaml", help="Line definition (YAML)."),
    horizon: str | None = typer.Option(None, help="Simulated time to run, e.g. 8h (overrides the file)."),
    warmup: str | None = typer.Option(None, help="Warm-up discarded from statistics, e.g. 1h."),
    seed: int | None = typer.Option(None, min=0, help="Random seed (overrides the file)."),
    engine: str | None = typer.Option(
        None,
        help="auto (the fastest engine that gives the simpy engine's answers), simpy, event or flow "
        "(overrides the file). The flow engine runs chains of single machines with saturated or "
        "interarrival release, operating failures, set-ups, scrap, products and shift calendars; the "
        "compiled event engine runs every other line (parallel machines, CONWIP, calendar-time "
        "failures, repair crews, maintenance, switch-off, and networks: routes, rework, assembly, "
        "transport), with the simpy engine's answers. Under auto the record's engine_fallback says "
        "in one line why a faster engine did not run it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    sink_config: so.SinkConfigOption = None,
    influx_url: so.InfluxUrlOption = None,
    influx_database: so.InfluxDatabaseOption = None,
    influx_token: so.InfluxTokenOption = None,
    influx_org: so.InfluxOrgOption = None,
    influx_bucket: so.InfluxBucketOption = None,
) -> None:
    """Simulate LINE.yaml once and print its KPIs (and write them to InfluxDB if asked)."""
    from twinloop.results import new_run_id, sink_options, twin_run_points, write_results

    with bad_input_exits():
        sink = sink_options(sink_config, influx_url, influx_database, influx_token, influx_org, influx_bucket)
        overrides: dict[str, Any] = {}
        if (value := duration_option("--horizon", horizon)) is not None:
            overrides["horizon"] = value
        if (value := duration_option("--warmup", warmup)) is not None:
            overrides["warmup"] = value
        if seed is not None:
            overrides["seed"] = seed
        if engine is not None:
            overrides["engine"] = engine
        from twin.line import load_line  # the twin loads numpy, simpy and numba: only when run
        from twin.run import choose_engine, run_line

        line = load_line(line_file, overrides)
        choose_engine(line, source=str(line_file))  # an engine the line cannot take: one line, exit 2
        result = run_line(line)
    if as_json:
        typer.echo(json.dumps(result.kpis))
    else:
        print_kpis(line.name, result.kpis)
    with bad_input_exits():
        points = twin_run_points(result.kpis, line=line.name, run_id=new_run_id(result.kpis["seed"]))
        if (message := write_results(sink, points, "twin run")) is not None:
            typer.echo(message, err=True)


SHOWN_AS = {"s": ("min", 60.0)}  # durations read better in minutes at the console
BOTTLENECK_SHARES = ("bottleneck_sole", "bottleneck_shifting")  # shown summed, in one column


def _heading(kpi: Kpi) -> tuple[str, float]:
    """A KPI's heading (label and unit; counts and names show the label only) and its divisor."""
    if kpi.type is not float or not kpi.unit:
        return kpi.label, 1.0
    unit, scale = SHOWN_AS.get(kpi.unit, (kpi.unit, 1.0))
    return f"{kpi.label} ({unit})", scale


def _shown(value: Any, scale: float) -> str:
    if value is None:
        return "-"
    return f"{value / scale:.2f}" if isinstance(value, float) else str(value)


def print_kpis(name: str, kpis: dict[str, Any]) -> None:
    """The KPIs as readable tables: the line's, then per station shares, parts out, bottleneck."""
    from twin.kpi_catalogue import kpis_at

    console = Console() if sys.stdout.isatty() else Console(width=160)
    summary = Table(
        title=f"{name}: {kpis['horizon_s'] / 3600:g} h simulated, {kpis['warmup_s'] / 3600:g} h warm-up"
    )
    summary.add_column("KPI")
    summary.add_column("value", justify="right")
    for kpi in kpis_at("line"):
        label, scale = _heading(kpi)
        summary.add_row(label, _shown(kpis[kpi.name], scale))
    summary.add_row("engine / events / wall", f"{kpis['engine']} / {kpis['events']} / {kpis['wall_s']:.2f}s")
    console.print(summary)
    stations = Table(title="stations (shares of machine time)")
    columns = [
        kpi
        for kpi in kpis_at("station")
        if kpi.unit == "share" and kpi.same_as is None and kpi.name not in BOTTLENECK_SHARES
    ]
    stations.add_column("station")
    for column in columns:
        stations.add_column(column.label, justify="right")
    stations.add_column("parts out", justify="right")
    stations.add_column("bottleneck", justify="right")
    for station, values in kpis["stations"].items():
        share = sum(values[name] for name in BOTTLENECK_SHARES)
        stations.add_row(
            station,
            *(f"{values[column.name]:.3f}" for column in columns),
            str(values["parts_out"]),
            f"{share:.0%}",
        )
    console.print(stations)

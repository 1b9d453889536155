"""`fabbrica experiment ...`: run designed experiments on the twin and write their results.

    fabbrica experiment run simulations/experiments/buffer_allocation.yaml --out out/buffers
    fabbrica experiment run study.yaml --out out/study --scheduler tcp://10.0.0.5:8786 --json

The heavy imports (pandas, matplotlib, dask) happen inside the commands, so the
rest of the `fabbrica` command starts as fast as before.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from fabbrica import sink_options as so
from fabbrica.errors import bad_input_exits, fail

if TYPE_CHECKING:
    from twin.experiments import ExperimentResult

EXIT_INTERRUPTED = 130

experiment_app = typer.Typer(
    help="Designed experiments on the twin: scenarios, replications, confidence intervals, reports.",
    no_args_is_help=True,
)


class _RunsPerSecond(ProgressColumn):
    """Finished runs per second of wall time since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.1f} runs/s", style="progress.data.speed")


@contextmanager
def _progress_bar(name: str) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        _RunsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with progress:
        yield progress


@experiment_app.command("run")
def run(
    experiment_file: Path = typer.Argument(..., metavar="EXPERIMENT.yaml", help="Experiment file (YAML)."),
    out: Path = typer.Option(
        ..., "--out", help="Folder for runs.parquet, summary.csv, report.html and experiment.json."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Local worker processes (default: the machine's cores)."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Run on a Dask distributed cluster instead, e.g. tcp://HOST:8786."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the summary."),
    sink_config: so.SinkConfigOption = None,
    influx_url: so.InfluxUrlOption = None,
    influx_database: so.InfluxDatabaseOption = None,
    influx_token: so.InfluxTokenOption = None,
    influx_org: so.InfluxOrgOption = None,
    influx_bucket: so.InfluxBucketOption = None,
    grafana_url: so.GrafanaUrlOption = None,
    grafana_token: so.GrafanaTokenOption = None,
) -> None:
    """Run every scenario x replication of EXPERIMENT.yaml and write the results into --out.

    Ctrl-C stops the experiment and keeps the runs finished so far (exit code 130).
    """
    from twin.experiments import Experiment
    from twinloop.results import experiment_points, sink_options, write_results

    if out.exists() and not out.is_dir():
        raise fail(f"--out {out}: exists and is not a folder")
    with bad_input_exits():
        sink = sink_options(sink_config, influx_url, influx_database, influx_token, influx_org, influx_bucket)
        experiment = Experiment.from_yaml(experiment_file)
    with bad_input_exits(), _progress_bar(experiment.name) as progress:
        bar = progress.add_task(experiment.name, total=None)

        def advance(done: int, planned: int) -> None:
            progress.update(bar, completed=done, total=planned)

        result = experiment.run(workers=workers, scheduler=scheduler, progress=advance)
    result.write(out)
    with bad_input_exits():
        if (message := write_results(sink, experiment_points(result), "experiment")) is not None:
            typer.echo(message, err=True)
    if grafana_url:
        from fabbrica.grafana.publish import try_annotate

        done, message = try_annotate(grafana_url, grafana_token, result.metadata)
        typer.echo(message if done else f"warning: no annotation: {message}", err=True)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        _print_summary(result, out)
    if result.interrupted:
        typer.echo(f"interrupted: {len(result.runs)} finished runs kept in {out}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)


@experiment_app.command("validate")
def validate(
    experiment_file: Path = typer.Argument(..., metavar="EXPERIMENT.yaml", help="Experiment file (YAML)."),
) -> None:
    """Check EXPERIMENT.yaml and every scenario's line without running anything."""
    from twin.experiments import Experiment

    with bad_input_exits():
        experiment = Experiment.from_yaml(experiment_file)
    scenarios = len(experiment.scenarios)
    typer.echo(
        f"{experiment_file}: ok: {experiment.name}, {scenarios} scenarios, "
        f"up to {scenarios * experiment.max_replications} runs"
    )


def _print_summary(result: ExperimentResult, out: Path) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=160)
    meta = result.metadata
    table = Table(
        title=f"{result.name}: {meta['runs']} runs in {meta['wall_s']:.1f} s "
        f"(mean ± 95% half-width over replications)"
    )
    table.add_column("scenario")
    for path in result.factors:
        table.add_column(path, justify="right")
    for kpi in result.kpis:
        table.add_column(kpi, justify="right")
    table.add_column("reps", justify="right")
    for scenario in result.to_json()["scenarios"]:
        cells = [scenario["id"]]
        cells += [str(scenario["factors"].get(path, "-")) for path in result.factors]
        for kpi in result.kpis:
            values = scenario["kpis"].get(kpi, {})
            mean, half = values.get("mean"), values.get("ci95")
            cells.append("-" if mean is None else f"{mean:.4g}" + ("" if half is None else f" ± {half:.2g}"))
        cells.append(str(scenario["replications"]))
        table.add_row(*cells)
    console.print(table)
    console.print(f"results in {out}/: runs.parquet, summary.csv, report.html, experiment.json")

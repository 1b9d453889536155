"""`fabbrica twin forecast`: the shift forecast from the line's state (a state file, or the recorded data)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fabbrica.errors import bad_input_exits, duration_option
from foundation.errors import InputError


def forecast(
    line_file: Path = typer.Argument(..., metavar="LINE.yaml", help="Line definition (YAML)."),
    state_file: Path | None = typer.Option(
        None, "--state", metavar="STATE.json", help="The line's state (format fabbrica-state/1)."
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        metavar="SOURCE",
        help="Reconstruct the state from recorded data instead: historian file, InfluxDB URL or "
        "connector config (as for `twin calibrate`).",
    ),
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="TIME",
        help="With --source: the instant of the state (ISO 8601, e.g. 2026-12-02T10:40:00Z).",
    ),
    speed: float | None = typer.Option(
        None,
        "--speed",
        min=0.0,
        help="With --source: simulated seconds per recorded second (1: a real line; default: inferred).",
    ),
    horizon: str = typer.Option(
        ..., "--horizon", metavar="DURATION", help="How far ahead, e.g. 200min or 3.5h."
    ),
    replications: int = typer.Option(200, "--replications", "-n", min=2, help="Replications of the twin."),
    seed: int | None = typer.Option(
        None,
        min=0,
        help="Seed of the first replication (the line's own by default); replication i uses seed+i.",
    ),
    target: int | None = typer.Option(
        None,
        "--target",
        metavar="PARTS",
        min=0,
        help="Parts the line should have made by the horizon (counting `produced`).",
    ),
    engine: str | None = typer.Option(
        None,
        help="auto (the fastest engine that gives the simpy engine's answers: flow, else event, "
        "else simpy), simpy, event or flow.",
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Worker processes (default: the engine's choice, at most the CPUs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Forecast LINE.yaml from its state over --horizon: parts out with P10/P50/P90, bottleneck, target."""
    from twin.forecast import default_workers
    from twin.forecast import forecast as run_forecast
    from twin.line import load_line
    from twin.run import choose_engine
    from twin.state import check_state, read_state

    with bad_input_exits():
        seconds = duration_option("--horizon", horizon)
        assert seconds is not None
        if not seconds > 0 or not math.isfinite(seconds):
            raise InputError(f"--horizon: must be > 0, got {horizon!r}")
        if (state_file is None) == (source is None):
            raise InputError("give either --state STATE.json or --source SOURCE --at TIME")
        if source is not None and at is None:
            raise InputError("--at: required with --source (the instant of the state)")
        if at is not None and source is None:
            raise InputError("--at: only with --source")
        line = load_line(line_file)
        chosen = choose_engine(line, engine, source=str(line_file))
        if state_file is not None:
            state = read_state(state_file)
            label = str(state_file)
        else:
            state = _reconstructed(line, source, at, speed)  # type: ignore[arg-type]
            label = f"--source {source}"
        check_state(line, state, label)
        count = workers if workers is not None else default_workers(line, chosen, replications, seconds)
        count = min(count, os.cpu_count() or 1)
        with _progress(replications, quiet=as_json) as advance:
            result = run_forecast(
                line,
                state,
                horizon=seconds,
                replications=replications,
                seed=seed,
                engine=chosen,
                target=target,
                workers=count,
                progress=advance,
                source=label,
            )
    if as_json:
        typer.echo(json.dumps(result))
    else:
        print_forecast(line.name, result)


def _reconstructed(line: Any, source: str, at: str, speed: float | None) -> Any:
    from twinloop.history import open_source, parse_time
    from twinloop.state import reconstruct_state

    instant = parse_time(at, "--at")
    if speed is not None and speed <= 0:
        raise InputError(f"--speed: must be > 0, got {speed:g}")
    return reconstruct_state(open_source(source), line, instant, speed=speed)


class _progress:
    """A progress bar on stderr while the replications run (not with --json, nor without a terminal)."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.shown = not quiet and sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.shown:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]forecast"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("replications"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("forecast", total=self.total)
        return lambda done: self.bar.advance(task, done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_forecast(name: str, result: dict[str, Any]) -> None:
    """The forecast as readable tables: the parts out and the target, then the stations."""
    console = Console() if sys.stdout.isatty() else Console(width=160)
    hours = result["horizon_s"] / 3600
    summary = Table(
        title=f"{name}: forecast over {hours:g} h, {result['replications']} replications ({result['engine']})"
    )
    summary.add_column("")
    summary.add_column("value", justify="right")
    parts = result["parts_out"]
    summary.add_row("parts out (mean ± 95 %)", f"{parts['mean']:.1f} ± {parts['ci95']:.1f}")
    summary.add_row(
        "parts out P10 / P50 / P90", f"{parts['p10']:.0f} / {parts['p50']:.0f} / {parts['p90']:.0f}"
    )
    rate = result["throughput_per_hour"]
    summary.add_row("throughput (/h)", f"{rate['mean']:.1f} ± {rate['ci95']:.1f}")
    summary.add_row("made before the state", str(result.get("produced", 0)))
    summary.add_row("bottleneck", result["bottleneck"])
    if "target" in result:
        target = result["target"]
        eta = target["eta_s"]
        summary.add_row(f"target {target['parts']}: probability", f"{target['probability']:.0%}")
        summary.add_row(
            "reached after (min) P10 / P50 / P90",
            " / ".join("-" if eta[q] is None else f"{eta[q] / 60:.0f}" for q in ("p10", "p50", "p90")),
        )
    console.print(summary)
    stations = Table(title="stations (mean shares of machine time over the horizon)")
    stations.add_column("station")
    states = list(next(iter(result["stations"].values()))["shares"])
    for state in states:
        stations.add_column(state, justify="right")
    stations.add_column("parts out", justify="right")
    for station, values in result["stations"].items():
        stations.add_row(
            station,
            *(f"{values['shares'][state]:.3f}" for state in states),
            f"{values['parts_out']['mean']:.1f}",
        )
    console.print(stations)

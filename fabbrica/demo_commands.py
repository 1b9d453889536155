"""`fabbrica demo`: the main job on a fresh machine (the loop itself is twinloop.demo)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer
from rich.console import Console

from fabbrica.errors import bad_input_exits
from foundation.errors import InputError

DEFAULT_LINE = Path(__file__).resolve().parent.parent / "simulations" / "lines" / "demonstrator.yaml"
PHASES = {
    "line": "1/6 streaming the simulated line through the connectors",
    "calibrate": "2/6 calibrating the twin from the historian",
    "validate": "3/6 validating the twin against the line",
    "experiment": "4/6 what-if experiment on the calibrated twin",
    "forecast": "5/6 forecast from the middle of the window",
    "report": "6/6 report",
}


def demo(
    line_file: Path = typer.Option(
        DEFAULT_LINE, "--line", help="Line to simulate (default: the demonstrator)."
    ),
    out: Path = typer.Option(Path("out/demo"), help="Folder for the historian, calibrated line and report."),
    speed: float = typer.Option(240.0, min=1.0, help="Simulated seconds per wall second."),
    hours: float = typer.Option(8.0, min=0.1, help="Hours of line time to record."),
    seed: int = typer.Option(1, min=0, help="Seed of the simulated line."),
    mqtt: str | None = typer.Option(None, help="Use this MQTT broker instead of the embedded one."),
    sink_config: Path | None = typer.Option(
        None,
        help="A file with a `sink:` section (or a whole connector config) to write to, e.g. the "
        "InfluxDB behind Grafana; secrets as ${ENV}.",
    ),
) -> None:
    """The whole loop: simulated line, connectors, historian, calibration, validation, what-if."""
    from twinloop.demo import run_demo

    console = Console(stderr=True)
    started = time.perf_counter()
    status = console.status("starting")
    marks: dict[str, float] = {}

    def progress(phase: str, detail: str = "") -> None:
        now = time.perf_counter()
        if marks:
            last = list(marks)[-1]
            console.log(f"[green]done[/] {PHASES[last]} ({now - marks[last]:.1f} s)")
        marks[phase] = now
        status.update(f"{PHASES[phase]}: {detail}")

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # the line stops before its clients
    with bad_input_exits(), status:
        try:
            result = run_demo(
                line_file,
                out,
                speed=speed,
                hours=hours,
                seed=seed,
                mqtt_url=mqtt,
                sink_config=sink_config,
                progress=progress,
            )
        except FileNotFoundError as exc:
            raise InputError(f"{exc.filename}: file not found") from None
    console.log(f"[green]done[/] {PHASES['report']}")
    validation = result.validation
    console.print(
        f"throughput: line {validation['throughput']['observed']:.1f}/h, "
        f"twin {validation['throughput']['twin_mean']:.1f}/h; verdict [bold]{validation['verdict']}[/]"
    )
    midway = result.midway
    parts = midway["forecast"]["parts_out"]
    console.print(
        f"forecast from the window's middle: P10/P50/P90 {parts['p10']:.0f}/{parts['p50']:.0f}/"
        f"{parts['p90']:.0f} parts; the line made {midway['actual']['parts_out']}"
    )
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; report: {result.report}")
    typer.echo(str(result.report))

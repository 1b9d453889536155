"""`fabbrica line ...`: serve the simulated pilot line (virtual PLCs over OPC UA, sensors over MQTT)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

from fabbrica.errors import bad_input_exits, duration_option
from foundation.errors import InputError

if TYPE_CHECKING:
    from simulations.hardware.serve import ServedLine

line_app = typer.Typer(
    help="Serve the simulated pilot line: virtual PLCs over OPC UA, sensors over MQTT.", no_args_is_help=True
)


@line_app.command("serve")
def serve_command(
    line_file: Path = typer.Argument(..., metavar="LINE.yaml", help="Line definition (YAML)."),
    speed: float | None = typer.Option(
        None, help="Simulated seconds per wall second, e.g. 60 (default 1: real time)."
    ),
    opcua: str | None = typer.Option(
        None, "--opcua", help="OPC UA endpoint, or 'none' (default opc.tcp://127.0.0.1:4840)."
    ),
    mqtt: str | None = typer.Option(
        None,
        "--mqtt",
        help="MQTT broker URL, mqtt:// or mqtts://, or 'none' (default mqtt://127.0.0.1:1883).",
    ),
    duration: str | None = typer.Option(
        None, help="Wall-clock time to serve, e.g. 30s or 2h (default: until SIGINT/SIGTERM)."
    ),
    seed: int | None = typer.Option(None, min=0, help="Random seed (overrides the line file)."),
    truth: Path | None = typer.Option(None, help="Write the ground truth (JSON) to this file on exit."),
    hardware: Path | None = typer.Option(
        None,
        help="Hardware file (YAML): security, users, signals, sensors, rates (docs/simulated-hardware.md).",
    ),
    prefix: str | None = typer.Option(None, "--mqtt-prefix", help="MQTT topic prefix (default 'factory')."),
    server_per_station: bool | None = typer.Option(
        None, "--server-per-station", help="One OPC UA server per station, on consecutive ports."
    ),
) -> None:
    """Run LINE.yaml in scaled real time behind simulated PLCs and sensors.

    The served line runs on the SimPy engine whatever the file's `engine`: its PLCs and sensors
    are told every state change and part as it happens (the compiled flow and event engines
    report to no observer), and at real-time speeds the engine waits on the clock, not the CPU.
    """
    # the simulated hardware loads only for this command: every other `fabbrica` command starts sooner
    import asyncio

    from connectors.common.secrets import hide_in_logs
    from simulations.hardware.config import load_hardware
    from twin.line import load_line

    with bad_input_exits():
        wall = duration_option("--duration", duration)
        if wall is not None and wall <= 0:
            raise InputError(f"--duration: must be > 0, got {duration!r}")
        if speed is not None and speed <= 0:
            raise InputError(f"--speed: must be > 0, got {speed:g}")
        overrides: dict[str, Any] = {}
        if speed is not None:
            overrides["speed"] = speed
        for _option, value, field in (("--opcua", opcua, "opcua"), ("--mqtt", mqtt, "mqtt")):
            if value is None:
                continue
            if value.strip().lower() == "none":
                overrides[f"{field}.enabled"] = False
            else:
                overrides[f"{field}.{'endpoint' if field == 'opcua' else 'url'}"] = value
        if prefix is not None:
            overrides["mqtt.prefix"] = prefix
        if server_per_station is not None:
            overrides["opcua.server_per_station"] = server_per_station
        config = load_hardware(hardware, overrides)
        line = load_line(line_file, {"seed": seed} if seed is not None else None)
    hide_in_logs([config.mqtt.credentials[1] or "", *config.opcua.security.users.values()])

    from simulations.hardware.serve import serve  # asyncua and paho load only when serving

    def ready(served: ServedLine) -> None:
        broker = [] if served.sensors is None else [_without_credentials(config.mqtt.url)]
        where = ", ".join([*served.endpoints, *broker])
        typer.echo(f"serving line {line.name} at speed {config.speed:g}: {where or 'no servers'}")
        sys.stdout.flush()

    try:
        asyncio.run(serve(line, config, seed=seed, duration=wall, truth=truth, on_ready=ready))
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _without_credentials(url: str) -> str:
    """The broker URL as printed: `mqtt://line:secret@host:1883` -> `mqtt://host:1883`."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

"""`fabbrica connect CONFIG.yaml` and `fabbrica connect browse opc.tcp://...`.

The first runs the connector described by CONFIG.yaml (OPC UA and MQTT sources into a sink)
until SIGINT/SIGTERM; the second prints an OPC UA server's variables as a config section.
A first argument that is not a sub-command is taken as the config file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

from fabbrica.errors import fail

if TYPE_CHECKING:  # the connectors load when a command runs: every other `fabbrica` command starts sooner
    import click

    from connectors.config import ConfigError, LoadedConfig


class _ConfigOrCommand(TyperGroup):
    """`connect FILE.yaml ...` runs the hidden `run` command; `connect browse ...` browses."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "CONFIG.yaml [--duration D] | browse opc.tcp://HOST:PORT")


connect_app = typer.Typer(
    cls=_ConfigOrCommand,
    help="Run connectors (OPC UA and MQTT into InfluxDB or the embedded historian): "
    "`fabbrica connect CONFIG.yaml`, or `fabbrica connect browse opc.tcp://...`.",
    no_args_is_help=True,
)


def config_message(source: str, error: ConfigError) -> str:
    """One line: `file: field.path: message`."""
    from connectors.config import SKIPPED_LOCATIONS
    from foundation.errors import validation_message

    if error.error is None:
        return str(error)
    return validation_message(source, error.error, SKIPPED_LOCATIONS)


def load(config_file: Path) -> LoadedConfig:
    from connectors.common.secrets import hide_in_logs
    from connectors.config import ConfigError, read_config

    try:
        loaded = read_config(config_file)
    except ConfigError as exc:
        raise fail(config_message(str(config_file), exc)) from None
    hide_in_logs(loaded.secrets)
    return loaded


@connect_app.command("run", hidden=True)
def run(
    config_file: Path = typer.Argument(..., metavar="CONFIG.yaml", help="Connector configuration (YAML)."),
    duration: float | None = typer.Option(None, min=0, help="Stop after this many seconds."),
    check: bool = typer.Option(False, "--check", help="Validate the config and exit."),
) -> None:
    """Run the connector described by CONFIG.yaml until SIGINT/SIGTERM."""
    loaded = load(config_file)
    if check:
        typer.echo(f"{config_file}: ok")
        return
    import asyncio

    from connectors.runner import run as run_connector

    # asyncua logs every publish response at INFO: keep it to warnings even with -v.
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().level))

    pipeline = asyncio.run(run_connector(loaded, duration=duration))
    health = pipeline.health
    logging.getLogger("fabbrica.connect").info(
        "stopped: %d in, %d written, %d spooled, %d dropped, %d rejected",
        health.points_in,
        health.points_written,
        health.spooled,
        health.dropped,
        health.rejected,
    )


@connect_app.command("browse")
def browse(
    endpoint: str = typer.Argument(..., metavar="opc.tcp://HOST:PORT", help="OPC UA server endpoint."),
    depth: int = typer.Option(8, min=1, max=20, help="How deep to browse below Objects."),
    username: str | None = typer.Option(None, help="User name, if the server wants one."),
    password: str | None = typer.Option(None, envvar="OPCUA_PASSWORD", help="Password (or $OPCUA_PASSWORD)."),
    security_policy: str = typer.Option(
        "None", help="None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss."
    ),
    security_mode: str | None = typer.Option(
        None, help="Sign or SignAndEncrypt (default with a policy: SignAndEncrypt)."
    ),
    certificate: str | None = typer.Option(None, help="Client certificate (DER or PEM), with a policy."),
    private_key: str | None = typer.Option(None, help="The client certificate's private key (PEM)."),
    server_certificate: str | None = typer.Option(None, help="The server's certificate, if known."),
    application_uri: str = typer.Option(
        "urn:fabbrica:connector", help="Client application URI (as in the client certificate)."
    ),
) -> None:
    """Print the server's variables as a ready-to-edit `opcua:` config section."""
    import asyncio

    from asyncua import ua
    from pydantic import ValidationError

    from connectors.common.secrets import hide_in_logs
    from connectors.opcua.browse import config_section
    from connectors.opcua.config import OpcUaSource
    from foundation.errors import format_error

    if not endpoint.startswith("opc.tcp://"):
        raise fail(f"endpoint: must start with opc.tcp://, got {endpoint!r}")
    if password:
        hide_in_logs([password])
    settings = {
        "endpoint": endpoint,
        "nodes": ["Objects/**"],
        "security_policy": security_policy,
        "security_mode": security_mode,
        "certificate": certificate,
        "private_key": private_key,
        "server_certificate": server_certificate,
        "application_uri": application_uri,
        "username": username,
        "password": password,
    }
    try:
        config = OpcUaSource.model_validate(settings)
    except ValidationError as exc:
        path, message = format_error(dict(exc.errors(include_url=False)[0]))
        raise fail(f"{path}: {message}" if path else message) from None
    try:
        text = asyncio.run(config_section(config, depth))
    except (OSError, TimeoutError, ConnectionError) as exc:
        typer.echo(f"error: {endpoint}: cannot connect: {exc or type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    except ua.UaError as exc:
        typer.echo(f"error: {endpoint}: refused: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(text, nl=False)

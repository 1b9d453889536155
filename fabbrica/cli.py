"""The `fabbrica` command: one entry point, one sub-command group per part of the testbed.

Bad input never shows a traceback: it prints one line naming the file and field and
exits with code 2.

Each sub-command's module is imported when that command runs (or lists its help), so
`fabbrica connect` never loads the twin, nor `fabbrica twin run` the connectors: a new
command is one line in COMMANDS.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from fabbrica import __version__

# name: (module, attribute): a command function or a Typer group, in the order --help lists them
# (as Typer lists an app's own commands before its added groups)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("fabbrica.demo_commands", "demo"),
    "optimize": ("fabbrica.optimize_commands", "optimize"),
    "twin": ("fabbrica.twin_commands", "twin_app"),
    "experiment": ("fabbrica.experiment_commands", "experiment_app"),
    "connect": ("fabbrica.connect_commands", "connect_app"),
    "line": ("fabbrica.line_commands", "line_app"),
    "grafana": ("fabbrica.grafana_commands", "grafana_app"),
}
# modules that add their commands to a group when imported
EXTENSIONS: dict[str, tuple[str, ...]] = {
    # calibrate, validate; live; advise
    "twin": ("fabbrica.calibration_commands", "fabbrica.live_commands", "fabbrica.advise_commands"),
}


def _command(name: str) -> TyperCommand | TyperGroup:
    """The command `name` as Typer builds it for `app.add_typer(...)` or `app.command(name)(...)`."""
    module, attribute = COMMANDS[name]
    for extension in EXTENSIONS.get(name, ()):
        importlib.import_module(extension)
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class _Commands(TyperGroup):
    """The root group: its sub-commands come from COMMANDS, imported on first use."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        return _command(cmd_name) if cmd_name in COMMANDS else None


app = typer.Typer(
    name="fabbrica",
    help="Smart-factory pilot line and digital-twin testbed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fabbrica {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="Log what happens: -v at INFO level, -vv at DEBUG."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    app()

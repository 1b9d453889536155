"""The `fabbrica` command: one entry point, one sub-command group per part of the testbed.

Bad input never shows a traceback: it prints one line naming the file and field and
exits with code 2.
"""

from __future__ import annotations

import logging
import sys

import typer

from fabbrica import (
    __version__,
    calibration_commands,  # noqa: F401  (registers `twin calibrate` and `twin validate`)
    live_commands,  # noqa: F401  (registers `twin live`)
)
from fabbrica.connect_commands import connect_app
from fabbrica.demo_commands import demo
from fabbrica.experiment_commands import experiment_app
from fabbrica.grafana_commands import grafana_app
from fabbrica.line_commands import line_app
from fabbrica.optimize_commands import optimize
from fabbrica.twin_commands import twin_app

app = typer.Typer(
    name="fabbrica",
    help="Smart-factory pilot line and digital-twin testbed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(twin_app, name="twin")
app.command("demo")(demo)
app.add_typer(experiment_app, name="experiment")
app.command("optimize")(optimize)
app.add_typer(connect_app, name="connect")
app.add_typer(line_app, name="line")
app.add_typer(grafana_app, name="grafana")


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

"""`fabbrica twin advise CONFIG.yaml [--apply] [--json]`: which setpoint the twin advises changing now.

The command reads the configuration (`twinloop.advise_config`), calls `twinloop.advise.run_advice`
and prints the advice: a table, or with `--json` one JSON object. With `--apply` an advised action
waits for a yes at the prompt (or `--yes`) and is then written to the PLC.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from fabbrica.errors import bad_input_exits
from fabbrica.forecast_commands import _progress
from fabbrica.twin_commands import twin_app
from foundation.errors import InputError

if TYPE_CHECKING:
    from twin.advice import Advice


@twin_app.command("advise")
def advise(
    config_file: Path = typer.Argument(
        ..., metavar="CONFIG.yaml", help="The advice's configuration (see twinloop/advise-sample.yaml)."
    ),
    apply: bool = typer.Option(
        False,
        "--apply",
        help="Write an advised action to the PLC (the config's apply:) once approved at the prompt.",
    ),
    yes: bool = typer.Option(False, "--yes", help="With --apply: approve without asking (scripts)."),
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="TIME",
        help="The instant of the state (ISO 8601; default: the config's at, else now).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Advise the setpoint change that best serves the objective from the line's state now."""
    from twinloop.advise import run_advice
    from twinloop.advise_config import read_advise_config
    from twinloop.history import parse_time

    with bad_input_exits():
        if yes and not apply:
            raise InputError("--yes: only with --apply")
        instant = parse_time(at, "--at")
        setup = read_advise_config(config_file)
        if apply and not yes and not sys.stdin.isatty():
            raise InputError("--apply: no terminal to ask for approval; give --yes to approve in a script")
        state: dict[str, Any] = {}

        def progress(total: int) -> Any:
            bar = _progress(total, quiet=as_json)
            state["bar"] = bar
            return bar.__enter__()

        def approve(advice: Advice) -> tuple[bool, str]:
            bar = state.get("bar")
            if bar is not None:
                bar.__exit__(None, None, None)
                state["bar"] = None
            from twinloop.advise import describe, who_am_i

            if yes:
                return True, f"{who_am_i()} (--yes)"
            if not as_json:
                print_advice(setup.line_tag, advice)
            answer = typer.confirm(f"apply {describe(advice.action)} now?", default=False, err=True)
            return answer, who_am_i()

        try:
            outcome = run_advice(setup, at=instant, apply=apply, approve=approve, progress=progress)
        finally:
            if state.get("bar") is not None:
                state["bar"].__exit__(None, None, None)
    if as_json:
        typer.echo(json.dumps(outcome.to_json()))
    else:
        if not (apply and outcome.advice.action and not yes):
            print_advice(setup.line_tag, outcome.advice)
        typer.echo(f"setpoints now ({outcome.current_from}): {_setpoints(outcome.current)}")
        if apply and outcome.advice.action:
            last = outcome.events[-1]
            typer.echo(
                f"{last.decision}"
                + (f" by {last.user}" if last.user else "")
                + (f": {last.note}" if last.note else "")
            )
    typer.echo(outcome.sink_message, err=True)
    refused = [event for event in outcome.events if event.decision == "refused"]
    if refused:
        typer.echo(f"error: {refused[-1].note}", err=True)
        raise typer.Exit(1)


def _setpoints(values: dict[str, Any]) -> str:
    from twinloop.advise import describe

    return describe(values) if values else "none (a saturated line)"


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def print_advice(name: str, advice: Advice) -> None:
    """The advice and every candidate's KPIs as tables."""
    from twinloop.advise import describe

    console = Console() if sys.stdout.isatty() else Console(width=160)
    objective = advice.objective
    hours = advice.horizon / 3600
    title = (
        f"{name}: advice at {advice.state_time or '-'} over {hours:g} h, {advice.replications} replications"
    )
    summary = Table(title=title)
    summary.add_column("")
    summary.add_column("value")
    summary.add_row("objective", objective.describe())
    summary.add_row("advice", describe(advice.action))
    summary.add_row(
        f"gain in {objective.kpi} (± 95 %)", f"{advice.gain['mean']:.4g} ± {advice.gain['ci95']:.2g}"
    )
    summary.add_row("why", advice.reason)
    console.print(summary)
    kpis = [objective.kpi, *(c.kpi for c in objective.constraints if c.kpi != objective.kpi)]
    for extra in ("throughput_per_hour", "wip_mean", "lead_time_mean_s"):
        if extra not in kpis:
            kpis.append(extra)
    table = Table(title="candidates (mean ± 95 %; the first is doing nothing)")
    table.add_column("action")
    for kpi in kpis:
        table.add_column(kpi, justify="right")
    table.add_column("feasible", justify="center")
    for index, candidate in enumerate(advice.candidates):
        label = describe(candidate.action) if candidate.action else "doing nothing"
        if candidate.action and candidate.action == advice.action:
            label = f"[bold]{label}[/bold] *"
        cells = []
        for kpi in kpis:
            value = candidate.kpi(kpi)
            cells.append(f"{_number(value['mean'])} ± {_number(value['ci95'])}")
        feasible = advice.feasible[index] if index < len(advice.feasible) else True
        table.add_row(label, *cells, "yes" if feasible else "no")
    console.print(table)

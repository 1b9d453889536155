"""`fabbrica optimize`: search a line's designs and select the best with a stated probability.

    fabbrica optimize simulations/optimisation/buffers.yaml --out out/buffers
    fabbrica optimize SPEC.yaml --out DIR --scheduler tcp://10.0.0.5:8786 --json

Running the same command again on the same --out folder resumes an interrupted search.
The heavy imports (the twin, Optuna, pandas) happen inside the command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fabbrica.errors import bad_input_exits, fail

if TYPE_CHECKING:
    from twin.optimisation import OptimisationResult

EXIT_INTERRUPTED = 130


def optimize(
    spec_file: Path = typer.Argument(..., metavar="SPEC.yaml", help="Optimisation file (YAML)."),
    out: Path = typer.Option(
        ..., "--out", help="Folder for evaluations.parquet, the study, optimization.json and report.html."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Local worker processes (default: the machine's cores)."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Run on a Dask distributed cluster instead, e.g. tcp://HOST:8786."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the result."),
) -> None:
    """Search the designs of SPEC.yaml, then select the best with KN; results into --out.

    Ctrl-C stops the search (exit code 130); the same command resumes it.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.optimisation import Optimisation

    if out.exists() and not out.is_dir():
        raise fail(f"--out {out}: exists and is not a folder")
    with bad_input_exits():
        optimisation = Optimisation.from_yaml(spec_file)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("search runs"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    try:
        with bad_input_exits(), progress:
            bar = progress.add_task(optimisation.name, total=None)

            def advance(done: int, planned: int) -> None:
                progress.update(bar, completed=done, total=planned)

            result = optimisation.run(workers=workers, scheduler=scheduler, progress=advance, out=out)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: the study in {out} resumes with the same command", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        _print_result(result, out)


def _print_result(result: OptimisationResult, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    meta = result.metadata
    best = meta["best"]
    if best is None:
        if meta["selection"].get("feasibility", {}).get("dropped"):
            console.print(meta["selection"]["guarantee"])  # each candidate shown to break a KPI constraint
        elif meta["search"]["evaluations"]:
            console.print("no design evaluated meets the constraints on KPIs (on its search mean)")
        else:
            console.print("no design could be evaluated")
        return
    table = Table(
        title=f"{result.name}: best of {meta['search']['evaluations']} designs ({meta['runs']} runs)"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    for path, value in best["factors"].items():
        table.add_row(path, str(value))
    for kpi, values in best["kpis"].items():
        half = values["ci95"]
        mean = values["mean"]
        text = "-" if mean is None else f"{mean:.4g}" + ("" if half is None else f" ± {half:.2g}")
        table.add_row(kpi, text)
    for check in meta["selection"].get("kpi_constraints", []):
        bounds = [f"{side} bound {check[side]:.4g}" for side in ("lower", "upper") if check[side] is not None]
        mean = "-" if check["mean"] is None else f"{check['mean']:.4g}"
        table.add_row(
            f"{check['constraint']} ({check['kpi']})",
            f"{mean}, {', '.join(bounds) or 'no bound'}: {check['decision']}",
        )
    console.print(table)
    console.print(meta["selection"]["guarantee"])
    console.print(f"results in {out}/: evaluations.parquet, optimization.json, report.html, best_line.yaml")

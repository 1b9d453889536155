"""`fabbrica grafana ...`: generate the provisioning files, publish to a Grafana, annotate runs.

fabbrica grafana generate [--check]
fabbrica grafana publish --url http://127.0.0.1:3000 --token $GRAFANA_TOKEN
fabbrica grafana annotate out/buffers --url http://127.0.0.1:3000
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fabbrica.errors import fail

grafana_app = typer.Typer(
    help="Grafana dashboards: generate grafana/ from code, publish them, annotate experiment runs.",
    no_args_is_help=True,
)

UrlOption = typer.Option(
    ..., "--url", envvar="GRAFANA_URL", help="Grafana's address, e.g. http://127.0.0.1:3000."
)
TokenOption = typer.Option(
    None, "--token", envvar="GRAFANA_TOKEN", show_envvar=True, help="A Grafana service-account token."
)


@grafana_app.command("generate")
def generate(
    folder: Path = typer.Option(Path("grafana"), "--out", help="The repository's grafana/ folder."),
    check: bool = typer.Option(False, "--check", help="Only report files that differ (exit 1 if any)."),
) -> None:
    """Write the dashboards and provisioning files under grafana/ from fabbrica/grafana/."""
    from fabbrica.grafana import provisioning

    if check:
        stale = provisioning.check(folder)
        for name in stale:
            typer.echo(f"{folder / name}: differs from the generated file", err=True)
        if stale:
            typer.echo("run `fabbrica grafana generate`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{folder}: up to date")
        return
    written = provisioning.generate(folder)
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo(f"{folder}: up to date")


@grafana_app.command("publish")
def publish(
    url: str = UrlOption,
    token: str | None = TokenOption,
    influx_url: str = typer.Option(
        ..., envvar="INFLUX_URL", help="InfluxDB as Grafana reaches it, e.g. http://influxdb:8086."
    ),
    influx_database: str = typer.Option(
        ..., envvar="INFLUX_DATABASE", help="Database (1.x) or bucket (2.x/3.x, through its DBRP mapping)."
    ),
    influx_token: str = typer.Option(
        "", envvar="INFLUX_TOKEN", show_envvar=True, help="InfluxDB token Grafana sends (empty for 1.x)."
    ),
) -> None:
    """Create or update the InfluxDB datasource and the dashboards on a running Grafana."""
    from grafana_client.client import GrafanaException

    from connectors.common.secrets import hide_in_logs
    from fabbrica.grafana.publish import connect
    from fabbrica.grafana.publish import publish as publish_all

    hide_in_logs([secret for secret in (token, influx_token) if secret])
    environ = {"INFLUX_URL": influx_url, "INFLUX_DATABASE": influx_database, "INFLUX_TOKEN": influx_token}
    try:
        summary = publish_all(connect(url, token), environ)
    except GrafanaException as exc:
        typer.echo(f"error: {url}: HTTP {exc.status_code}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: {url}: cannot connect: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"datasource {summary['datasource']}; dashboards: {', '.join(summary['dashboards'])}")


@grafana_app.command("annotate")
def annotate(
    results: Path = typer.Argument(
        ..., metavar="OUT", help="An experiment's --out folder (or its experiment.json)."
    ),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Mark an experiment run on the experiments dashboard."""
    from fabbrica.grafana.publish import try_annotate

    file = results / "experiment.json" if results.is_dir() else results
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"{file}: cannot read the experiment's metadata: {exc}") from None
    if not isinstance(metadata, dict) or "experiment" not in metadata or "finished_at" not in metadata:
        raise fail(f"{file}: not an experiment.json (no experiment or finished_at)")
    done, message = try_annotate(url, token, metadata)
    if not done:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1)
    typer.echo(message)

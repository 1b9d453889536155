"""The sink options that `fabbrica twin run`, `twin validate` and `experiment run` share.

The same places the connectors write to: a connector config's `sink:` section, or an
InfluxDB given on the command line. The token comes from INFLUX_TOKEN, never from a file
in the repository.

    fabbrica twin run line.yaml --sink-config deploy/connector.yaml
    fabbrica twin run line.yaml --influx-url http://127.0.0.1:8086 --influx-database plant
    INFLUX_TOKEN=... fabbrica experiment run study.yaml --out out/ \\
        --influx-url http://127.0.0.1:8086 --influx-org fabbrica --influx-bucket plant
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_PANEL = "Results to InfluxDB"

SinkConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--sink-config",
        metavar="CONNECTOR.yaml",
        help="Write the results where this connector config's `sink:` points (${ENV} substituted).",
        rich_help_panel=_PANEL,
    ),
]
InfluxUrlOption = Annotated[
    str | None,
    typer.Option("--influx-url", help="Write the results to this InfluxDB.", rich_help_panel=_PANEL),
]
InfluxDatabaseOption = Annotated[
    str | None,
    typer.Option("--influx-database", help="InfluxDB 1.x database.", rich_help_panel=_PANEL),
]
InfluxTokenOption = Annotated[
    str | None,
    typer.Option(
        "--influx-token",
        envvar="INFLUX_TOKEN",
        show_envvar=True,
        help="InfluxDB 2.x/3.x token (better from the environment).",
        rich_help_panel=_PANEL,
    ),
]
InfluxOrgOption = Annotated[
    str | None,
    typer.Option("--influx-org", help="InfluxDB 2.x organisation.", rich_help_panel=_PANEL),
]
InfluxBucketOption = Annotated[
    str | None,
    typer.Option("--influx-bucket", help="InfluxDB 2.x/3.x bucket.", rich_help_panel=_PANEL),
]

GrafanaUrlOption = Annotated[
    str | None,
    typer.Option(
        "--grafana-url",
        help="Also mark the run as an annotation on this Grafana's experiments dashboard.",
        rich_help_panel="Grafana",
    ),
]
GrafanaTokenOption = Annotated[
    str | None,
    typer.Option(
        "--grafana-token",
        envvar="GRAFANA_TOKEN",
        show_envvar=True,
        help="Grafana service-account token (better from the environment).",
        rich_help_panel="Grafana",
    ),
]

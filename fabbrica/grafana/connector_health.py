"""Connector health: is every point from the line reaching the database, and how late?

Reads `connector_health` (tag `connector`; docs/influx-schema.md), which every running
`fabbrica connect` writes every `health.interval`: points in from the sources, written to
the sink, waiting in the spool, dropped from a full spool, rejected as bad input,
reconnects, and the age of the oldest unwritten point (lag). The counters run from the
connector's start; a restart sets them back to zero.
"""

from __future__ import annotations

from fabbrica.grafana.model import (
    Dashboard,
    Panel,
    Query,
    Variable,
    by_name,
    lasts,
    matches,
    organize,
    row,
    stat_options,
    table_options,
    thresholds,
    timeseries_options,
    where,
)

UID = "fabbrica-connector-health"
CONNECTOR = matches("connector", "connector")
FROM = f'FROM "connector_health" {where(CONNECTOR)}'

VARIABLES = [
    Variable(
        "connector",
        "Connector",
        'SHOW TAG VALUES FROM "connector_health" WITH KEY = "connector"',
        multi=True,
        include_all=True,
    )
]
COUNTERS = (  # field, title, colour above zero
    ("dropped", "Dropped", "red"),
    ("rejected", "Rejected", "orange"),
    ("reconnects", "Reconnects", "orange"),
)


def _stats() -> list[Panel]:
    panels = [
        Panel(
            "stat",
            "Points in and written",
            [
                Query(
                    f'SELECT last("points_in") AS "in", last("points_written") AS "written" {FROM}',
                    fields=("in", "written"),
                )
            ],
            width=6,
            height=5,
            description="Points taken from the sources and accepted by the sink since the connector started.",
            options=stat_options(color_mode="none"),
            defaults={"unit": "short", "decimals": 0},
        ),
        Panel(
            "stat",
            "Spooled",
            [Query(f'SELECT last("spooled") AS "spooled" {FROM}', fields=("spooled",))],
            width=3,
            height=5,
            description="Points waiting on disk for the sink (grows while the database is unreachable).",
            options=stat_options(text_mode="value"),
            defaults={
                "unit": "short",
                "decimals": 0,
                "thresholds": thresholds((None, "green"), (10000, "orange")),
            },
        ),
    ]
    for name, title, colour in COUNTERS:
        panels.append(
            Panel(
                "stat",
                title,
                [Query(f'SELECT last("{name}") AS "{name}" {FROM}', fields=(name,))],
                width=3,
                height=5,
                description=f"{title} since the connector started.",
                options=stat_options(text_mode="value", color_mode="background"),
                defaults={
                    "unit": "short",
                    "decimals": 0,
                    "thresholds": thresholds((None, "green"), (1, colour)),
                },
            )
        )
    panels.append(
        Panel(
            "stat",
            "Lag",
            [Query(f'SELECT last("lag_s") AS "lag" {FROM}', fields=("lag",))],
            width=6,
            height=5,
            description="Age of the oldest point not yet in the database.",
            options=stat_options(text_mode="value", color_mode="background"),
            defaults={
                "unit": "s",
                "decimals": 1,
                "thresholds": thresholds((None, "green"), (5, "orange"), (30, "red")),
            },
        )
    )
    return panels


def _trends() -> list[Panel]:
    rates = Query(
        'SELECT non_negative_derivative(last("points_in"), 1s) AS "in", '
        'non_negative_derivative(last("points_written"), 1s) AS "written" '
        f'{FROM} GROUP BY time($__interval), "connector" fill(none)',
        fields=("in", "written"),
        group=("connector",),
        alias="$tag_connector $col",
    )
    backlog = Query(
        f'SELECT last("spooled") AS "spooled", max("lag_s") AS "lag" {FROM} '
        'GROUP BY time($__interval), "connector" fill(none)',
        fields=("spooled", "lag"),
        group=("connector",),
        alias="$tag_connector $col",
    )
    faults = Query(
        f"SELECT {lasts('dropped', 'rejected', 'reconnects')} {FROM} "
        'GROUP BY time($__interval), "connector" fill(none)',
        fields=("dropped", "rejected", "reconnects"),
        group=("connector",),
        alias="$tag_connector $col",
    )
    table = Query(
        f"SELECT {lasts(('points_in', 'in'), ('points_written', 'written'), 'spooled', 'dropped')}, "
        f'{lasts("rejected", "reconnects", ("lag_s", "lag"))} {FROM} GROUP BY "connector"',
        fields=("in", "written", "spooled", "dropped", "rejected", "reconnects", "lag"),
        group=("connector",),
        format="table",
    )
    lines = {"custom": {"drawStyle": "line", "lineInterpolation": "stepAfter", "showPoints": "never"}}
    return [
        row("Over time"),
        Panel(
            "timeseries",
            "Points per second",
            [rates],
            width=12,
            height=8,
            description="Rate of points taken in and written to the sink.",
            options=timeseries_options(),
            defaults={"unit": "short", "min": 0} | lines,
        ),
        Panel(
            "timeseries",
            "Spool and lag",
            [backlog],
            width=12,
            height=8,
            description="Points waiting in the spool (left axis) and the age of the oldest (right axis).",
            options=timeseries_options(),
            defaults={"unit": "short", "min": 0} | lines,
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".* lag$"},
                    "properties": [
                        {"id": "unit", "value": "s"},
                        {"id": "custom.axisPlacement", "value": "right"},
                    ],
                }
            ],
        ),
        Panel(
            "timeseries",
            "Dropped, rejected, reconnects",
            [faults],
            width=12,
            height=8,
            description="The fault counters since each connector's start; a step up is worth a look.",
            options=timeseries_options(),
            defaults={"unit": "short", "min": 0, "decimals": 0} | lines,
        ),
        Panel(
            "table",
            "Connectors",
            [table],
            width=12,
            height=8,
            description="Latest health of every connector.",
            options=table_options(),
            defaults={"unit": "short", "decimals": 0},
            overrides=[
                by_name("lag", unit="s", decimals=1),
                by_name(
                    "dropped",
                    thresholds=thresholds((None, "green"), (1, "red")),
                    custom__cellOptions={"type": "color-text"},
                ),
            ],
            transformations=[organize()],
        ),
    ]


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="fabbrica: connector health",
        description="Points in, written, spooled, dropped, rejected, reconnects and lag of every connector.",
        variables=VARIABLES,
        panels=[*_stats(), *_trends()],
        refresh="10s",
        time_from="now-1h",
        tags=("fabbrica", "connectors"),
    )

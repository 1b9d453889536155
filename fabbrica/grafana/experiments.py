"""Experiments: the scenarios of a designed experiment compared, KPI by KPI, with 95 % intervals.

Reads what `fabbrica experiment run --influx-...` writes (`experiment_kpi`,
`experiment_bottleneck`, `experiment_run`; docs/influx-schema.md). Each KPI gets a bar chart
with one floating bar per scenario: the bar spans the 95 % confidence interval of the mean
over replications, and the change of colour inside it marks the mean. The ranking table
orders the scenarios by one KPI; the bottleneck chart shows how often each station limited
the line in each scenario. Every experiment run is an annotation (from `experiment_run`,
and from `fabbrica grafana annotate` on a Grafana reached over its API).
"""

from __future__ import annotations

from typing import Any

from fabbrica.grafana.model import (
    Annotation,
    Dashboard,
    Panel,
    Query,
    Variable,
    barchart_options,
    by_name,
    by_regexp,
    kpi_unit,
    lasts,
    matches,
    matrix,
    organize,
    row,
    sort_by,
    stat_options,
    table_options,
    where,
)
from twin.kpi_catalogue import kpi, kpis_at

UID = "fabbrica-experiments"
EXPERIMENT = matches("experiment", "experiment")
SCENARIO = matches("scenario", "scenario")

VARIABLES = [
    Variable("experiment", "Experiment", 'SHOW TAG VALUES FROM "experiment_kpi" WITH KEY = "experiment"'),
    Variable(
        "scenario",
        "Scenario",
        f'SHOW TAG VALUES FROM "experiment_kpi" WITH KEY = "scenario" WHERE {EXPERIMENT}',
        multi=True,
        include_all=True,
    ),
    Variable(
        "kpi",
        "KPI",
        f'SHOW TAG VALUES FROM "experiment_kpi" WITH KEY = "kpi" WHERE {EXPERIMENT}',
        multi=True,
        include_all=True,
        description="One comparison chart per KPI chosen here.",
    ),
    Variable(
        "station",
        "Station",
        f'SHOW TAG VALUES FROM "experiment_bottleneck" WITH KEY = "station" WHERE {EXPERIMENT}',
        multi=True,
        include_all=True,
        description="The stations the bottleneck chart shows.",
    ),
    Variable(
        "rank_kpi",
        "Rank by",
        f'SHOW TAG VALUES FROM "experiment_kpi" WITH KEY = "kpi" WHERE {EXPERIMENT}',
        current=kpi("throughput_per_hour").name,
        description="The KPI the ranking table sorts the scenarios by (highest first).",
    ),
]

ANNOTATIONS = [
    Annotation(
        "Experiment runs",
        f'SELECT "text", "line" FROM "experiment_run" {where(EXPERIMENT)}',
        text_column="text",
        tags_column="line",
    )
]


def kpi_units() -> list[dict[str, Any]]:
    """Overrides giving each KPI column its unit from twin.kpi_catalogue: a line KPI by its name
    (`energy_per_good_part_kwh`), a station KPI by its experiment name (`stations.NAME.oee`).
    Means over replications keep their decimals, counts too."""
    overrides = [
        by_name(declared.name, unit=unit) for declared in kpis_at("line") if (unit := kpi_unit(declared))
    ]
    overrides += [
        by_regexp(rf"^stations\.[^.]+\.{declared.name}$", unit=unit)
        for declared in kpis_at("station")
        if (unit := kpi_unit(declared))
    ]
    return overrides


def _overview() -> list[Panel]:
    runs = Query(
        'SELECT last("scenarios") AS "scenarios", last("runs") AS "runs", last("wall_s") AS "wall time" '
        f'FROM "experiment_run" {where(EXPERIMENT)}',
        fields=("scenarios", "runs", "wall time"),
    )
    return [
        Panel(
            "stat",
            "Latest run of the experiment",
            [runs],
            width=24,
            height=4,
            description="Scenarios, runs in all, and wall time of the latest run in the time range.",
            options=stat_options(color_mode="none"),
            defaults={"unit": "short", "decimals": 0},
            overrides=[by_name("wall time", unit="s", decimals=1)],
        )
    ]


def _comparison() -> list[Panel]:
    band = Query(
        'SELECT last("lower") AS "lower", last("ci95") AS "to mean", last("ci95") AS "to upper" '
        f'FROM "experiment_kpi" {where(EXPERIMENT, SCENARIO, matches("kpi", "kpi"))} GROUP BY "scenario"',
        fields=("lower", "to mean", "to upper"),
        group=("scenario",),
        format="table",
    )
    hidden = {"legend": True, "tooltip": True, "viz": True}
    return [
        row("Scenario comparison"),
        Panel(
            "barchart",
            "$kpi by scenario (mean, 95 % interval)",
            [band],
            width=8,
            height=9,
            description="One floating bar per scenario spans the 95 % confidence interval of the "
            "KPI's mean over replications (Student t); the colour changes at the mean.",
            options=barchart_options("scenario", stacking="normal") | {"showValue": "never"},
            defaults={"color": {"mode": "palette-classic"}, "custom": {"fillOpacity": 80}},
            overrides=[
                by_name(
                    "lower", color={"mode": "fixed", "fixedColor": "transparent"}, custom__hideFrom=hidden
                ),
                by_name("to mean", color={"mode": "fixed", "fixedColor": "blue"}, displayName="mean - 95 %"),
                by_name(
                    "to upper", color={"mode": "fixed", "fixedColor": "light-blue"}, displayName="mean + 95 %"
                ),
            ],
            transformations=[organize()],
            repeat="kpi",
        ),
    ]


def _ranking() -> list[Panel]:
    ranking = Query(
        f'SELECT {lasts("mean", "ci95", "lower", "upper", "replications")} FROM "experiment_kpi" '
        f'{where(EXPERIMENT, SCENARIO, matches("kpi", "rank_kpi"))} GROUP BY "scenario"',
        fields=("mean", "ci95", "lower", "upper", "replications"),
        group=("scenario",),
        format="table",
    )
    all_kpis = Query(
        f'SELECT last("mean") AS "mean" FROM "experiment_kpi" {where(EXPERIMENT, SCENARIO)} '
        'GROUP BY "scenario", "kpi"',
        fields=("mean",),
        group=("scenario", "kpi"),
        format="table",
    )
    bottleneck = Query(
        'SELECT last("total") AS "share" FROM "experiment_bottleneck" '
        f"{where(EXPERIMENT, SCENARIO, matches('station', 'station'))} "
        'GROUP BY "scenario", "station"',
        fields=("share",),
        group=("scenario", "station"),
        format="table",
    )
    return [
        row("Ranking and bottlenecks"),
        Panel(
            "table",
            "Scenarios ranked by $rank_kpi",
            [ranking],
            width=12,
            height=9,
            description="Highest mean first (click a header to reverse for a KPI where lower is "
            "better, such as lead time). lower/upper: the 95 % interval of the mean.",
            options=table_options("mean"),
            defaults={"decimals": 3},
            overrides=[by_name("replications", decimals=0)],
            transformations=[sort_by("mean"), organize()],
        ),
        Panel(
            "barchart",
            "Bottleneck shares",
            [bottleneck],
            width=12,
            height=9,
            description="Share of time each station was the bottleneck (sole or shifting, mean over "
            "replications), per scenario.",
            options=barchart_options("scenario\\station", stacking="normal"),
            defaults={"unit": "percentunit", "min": 0, "color": {"mode": "palette-classic"}},
            transformations=[matrix("station", "scenario", "share")],
        ),
        Panel(
            "table",
            "Every KPI by scenario (mean over replications)",
            [all_kpis],
            width=24,
            height=8,
            description="One row per scenario, one column per KPI of the experiment, in the "
            "KPI's unit (docs/kpis.md): energy per good part in kWh/part, shares in %.",
            options=table_options(),
            defaults={"decimals": 3},
            overrides=kpi_units(),
            transformations=[matrix("kpi", "scenario", "mean")],
        ),
    ]


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="fabbrica: experiments",
        description="Designed experiments on the twin: scenarios compared with 95 % confidence intervals.",
        variables=VARIABLES,
        panels=[*_overview(), *_comparison(), *_ranking()],
        annotations=ANNOTATIONS,
        refresh="1m",
        time_from="now-7d",
        tags=("fabbrica", "experiments"),
    )

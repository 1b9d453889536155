"""Twin validation: what the line did against what its twin says, from the latest validation.

Reads what `fabbrica twin validate --influx-...` writes (`validation_run`, `validation`) and
what `fabbrica twin run --influx-...` writes (`twin_kpi`, `twin_station`); see
docs/influx-schema.md. `last()` over the time range picks the latest validation of every
compared quantity: the verdict, throughput observed against the twin's mean and 95 %
interval, and each station's state shares side by side. Below, the latest twin runs.
"""

from __future__ import annotations

from fabbrica.grafana.model import (
    SHARE_THRESHOLDS,
    Dashboard,
    Panel,
    Query,
    Variable,
    barchart_options,
    by_name,
    kpi_field,
    lasts,
    matches,
    organize,
    row,
    sort_by,
    stat_options,
    table_options,
    thresholds,
    timeseries_options,
    where,
)
from twin.kpi_catalogue import kpi
from twin.station import REPORTED_STATES

UID = "fabbrica-twin-validation"
LINE = matches("line", "line")
STATION = matches("station", "station")
THROUGHPUT = f"\"quantity\" = '{kpi('throughput_per_hour').name}'"
ERROR_THRESHOLDS = thresholds((None, "green"), (0.05, "orange"), (0.1, "red"))
# the twin runs table: (line KPI, column heading); units and decimals from twin.kpi_catalogue
TWIN_RUN_COLUMNS = (
    ("throughput_per_hour", "throughput/h"),
    ("wip_mean", "WIP"),
    ("lead_time_mean_s", "lead time"),
    ("lead_time_p95_s", "lead time p95"),
    ("parts_out", "parts out"),
    ("scrapped", "scrapped"),
    ("bottleneck", "bottleneck"),
    ("planned_share", "planned"),
    ("throughput_per_planned_hour", "throughput/planned h"),
    ("energy_kwh", "energy"),
    ("energy_per_good_part_kwh", "energy/good part"),
    ("energy_per_planned_hour_kwh", "energy/planned h"),
)
# the twin's plant time and energy per station: (station KPI, column heading)
TWIN_STATION_COLUMNS = (
    ("planned_stop", "planned stop"),
    ("maintenance", "maintenance"),
    ("waiting_repair", "waiting for repair"),
    ("off", "switched off"),
    ("energy_kwh", "energy"),
    ("energy_per_good_part_kwh", "energy/good part"),
)
VARIABLES = [
    Variable("line", "Line", 'SHOW TAG VALUES FROM "validation_run" WITH KEY = "line"'),
    Variable(
        "station",
        "Station",
        f'SHOW TAG VALUES FROM "validation" WITH KEY = "station" WHERE {LINE}',
        multi=True,
        include_all=True,
    ),
    Variable(
        "state",
        "State share",
        values=REPORTED_STATES,
        multi=True,
        include_all=True,
        current="working",
        description="One observed-against-twin chart per state chosen here.",
    ),
]


def _verdict() -> list[Panel]:
    verdict = Query(
        f'SELECT last("verdict") AS "verdict" FROM "validation_run" {where(LINE)}',
        fields=("verdict",),
    )
    throughput = Query(
        'SELECT last("observed") AS "observed", last("twin") AS "twin", last("twin_ci95") AS "twin ±95 %", '
        'last("rel_error") AS "relative error" '
        f'FROM "validation" {where(LINE, THROUGHPUT)}',
        fields=("observed", "twin", "twin ±95 %", "relative error"),
    )
    history = Query(
        'SELECT last("rel_error") AS "relative error", last("tolerance") AS "tolerance" '
        f'FROM "validation" {where(LINE, THROUGHPUT)} '
        "GROUP BY time($__interval) fill(none)",
        fields=("relative error", "tolerance"),
    )
    mappings = [
        {
            "type": "value",
            "options": {
                "valid": {"color": "green", "index": 0, "text": "valid"},
                "invalid": {"color": "red", "index": 1, "text": "invalid"},
            },
        }
    ]
    return [
        Panel(
            "stat",
            "Verdict",
            [verdict],
            width=4,
            height=5,
            description="valid: throughput and every station's working share (where the line "
            "worked at least 5 % of the time) are within the tolerance.",
            options=stat_options(text_mode="value", fields="/^verdict$/", color_mode="background"),
            defaults={
                "mappings": mappings,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds((None, "text")),
            },
        ),
        Panel(
            "stat",
            "Throughput: observed and twin (parts/h)",
            [throughput],
            width=12,
            height=5,
            description="What the line made per hour in the window, the twin's mean over its "
            "replications with the 95 % half-width, and the relative error.",
            options=stat_options(color_mode="value"),
            defaults={"unit": "short", "decimals": 2, "color": {"mode": "fixed", "fixedColor": "text"}},
            overrides=[
                by_name(
                    "relative error",
                    unit="percentunit",
                    decimals=1,
                    thresholds=ERROR_THRESHOLDS,
                    color={"mode": "thresholds"},
                )
            ],
        ),
        Panel(
            "timeseries",
            "Throughput error over validations",
            [history],
            width=8,
            height=5,
            description="Relative throughput error of each validation, against its tolerance.",
            options=timeseries_options(),
            defaults={"unit": "percentunit", "min": 0, "custom": {"drawStyle": "points", "pointSize": 6}},
            overrides=[by_name("tolerance", color={"mode": "fixed", "fixedColor": "red"})],
        ),
    ]


def _shares() -> list[Panel]:
    shares = Query(
        'SELECT last("observed") AS "observed", last("twin") AS "twin" '
        f'FROM "validation" {where(LINE, STATION, matches("quantity", "state"))} GROUP BY "station"',
        fields=("observed", "twin"),
        group=("station",),
        format="table",
    )
    everything = Query(
        'SELECT last("observed") AS "observed", last("twin") AS "twin", last("rel_error") AS "rel_error" '
        f'FROM "validation" {where(LINE)} GROUP BY "quantity", "station"',
        fields=("observed", "twin"),
        group=("quantity", "station"),
        format="table",
    )
    return [
        row("Stations: observed against twin"),
        Panel(
            "barchart",
            "$state share: observed and twin",
            [shares],
            width=8,
            height=8,
            description="Share of the window each station spent in this state, on the line and in the twin.",
            options=barchart_options("station"),
            defaults={"unit": "percentunit", "min": 0, "max": 1, "color": {"mode": "palette-classic"}},
            overrides=[
                by_name("observed", color={"mode": "fixed", "fixedColor": "purple"}),
                by_name("twin", color={"mode": "fixed", "fixedColor": "blue"}),
            ],
            transformations=[organize()],
            repeat="state",
        ),
        Panel(
            "table",
            "Every compared quantity",
            [everything],
            width=24,
            height=10,
            description="Latest value of each quantity; rel_error where the validation judges it.",
            options=table_options("rel_error"),
            defaults={"decimals": 3, "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            overrides=[
                by_name(
                    "rel_error",
                    unit="percentunit",
                    decimals=1,
                    thresholds=ERROR_THRESHOLDS,
                    custom__cellOptions={"type": "color-text"},
                )
            ],
            transformations=[organize()],
        ),
    ]


def _twin_runs() -> list[Panel]:
    runs = Query(
        f'SELECT {lasts(*TWIN_RUN_COLUMNS)} FROM "twin_kpi" {where(LINE)} GROUP BY "run_id"',
        fields=tuple(heading for _, heading in TWIN_RUN_COLUMNS),
        group=("run_id",),
        format="table",
    )
    oee = Query(
        'SELECT last("availability") AS "availability", last("performance") AS "performance", '
        'last("quality") AS "quality", last("oee") AS "oee", last("bottleneck") AS "bottleneck share" '
        f'FROM "twin_station" {where(LINE, STATION)} GROUP BY "station"',
        fields=("availability", "performance", "quality", "oee", "bottleneck share"),
        group=("station",),
        format="table",
    )
    plant = Query(
        f'SELECT {lasts(*TWIN_STATION_COLUMNS)} FROM "twin_station" '
        f'{where(LINE, STATION)} GROUP BY "station"',
        fields=tuple(heading for _, heading in TWIN_STATION_COLUMNS),
        group=("station",),
        format="table",
    )
    cells = {"type": "color-background", "mode": "gradient"}
    return [
        row("Twin runs"),
        Panel(
            "table",
            "Twin runs (latest first)",
            [runs],
            width=24,
            height=7,
            description="KPIs of each `fabbrica twin run` written to this database: planned is "
            "the share of the run inside the shift calendar's planned production time, throughput "
            "and energy per planned hour count planned hours only (docs/kpis.md).",
            options=table_options(),
            defaults={"decimals": 2},
            overrides=[
                by_name(heading, **properties)
                for name, heading in TWIN_RUN_COLUMNS
                if (properties := kpi_field(kpi(name)))
            ],
            transformations=[sort_by("Time"), organize(exclude=())],
        ),
        Panel(
            "table",
            "Twin OEE per station (latest run)",
            [oee],
            width=24,
            height=8,
            description="The latest twin run's availability, performance, quality, OEE and "
            "bottleneck share per station; same colours as the line overview's OEE table.",
            options=table_options(),
            defaults={"unit": "percentunit", "decimals": 1},
            overrides=[
                by_name(name, thresholds=SHARE_THRESHOLDS, custom__cellOptions=cells)
                for name in ("availability", "performance", "quality", "oee")
            ],
            transformations=[organize()],
        ),
        Panel(
            "table",
            "Twin planned time, repair and energy per station (latest run)",
            [plant],
            width=24,
            height=8,
            description="The latest twin run's shares of planned stops, preventive maintenance, "
            "waiting for a technician and switched off, and each station's energy and energy per "
            "good part (docs/kpis.md).",
            options=table_options(),
            defaults={"decimals": 3},
            overrides=[
                by_name(heading, **kpi_field(kpi(name, "station"))) for name, heading in TWIN_STATION_COLUMNS
            ],
            transformations=[organize()],
        ),
    ]


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="fabbrica: twin validation",
        description="The twin against the line: latest validation and twin runs.",
        variables=VARIABLES,
        panels=[*_verdict(), *_shares(), *_twin_runs()],
        refresh="1m",
        time_from="now-7d",
        tags=("fabbrica", "twin"),
    )

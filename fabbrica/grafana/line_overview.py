"""The line overview: what the line makes, where its parts wait, how well each station runs.

Reads what the connectors write from the PLCs and sensors (`machine`, `sensor`, `part`):
output per station, work in progress, OEE per station, each station's state over time,
where the time goes (downtime Pareto), good and scrap counts, the flow of parts between
stations (routes, rework, exits: the part events' `to` and `reworked`), cycle times and live
signals.

OEE comes from each station's cumulative state-time counters over the dashboard's time
range (`spread()`: last minus first value), in the line's own (simulated) seconds:

    total        = dWorking + dBlocked + dStarved + dDown + dSetup
    availability = 1 - (dDown + dSetup) / total
    performance  = IdealCycleTime * (dProduced + dScrapped) / (total - dDown - dSetup)
    quality      = dProduced / (dProduced + dScrapped)
    oee          = availability * performance * quality
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
    legend,
    matches,
    organize,
    row,
    sort_by,
    stat_options,
    table_options,
    thresholds,
    timeseries_options,
    tooltip,
    where,
)
from twin.station import REPORTED_STATES, STATE_NAMES

UID = "fabbrica-line-overview"
LINE = matches("line", "line")
STATION = matches("station", "station")
STATE_COLOURS = {
    "working": "green",
    "blocked": "orange",
    "starved": "yellow",
    "down": "red",
    "setup": "blue",
    "stopped": "text",
    "waiting_repair": "purple",
}
# (state code, name, colour) in twin.station's order, the codes the PLCs publish
STATES = tuple((code, name, STATE_COLOURS[name]) for code, name in enumerate(STATE_NAMES))
# the PLCs' TimeWorking, ..., TimeWaitingRepair counters
COUNTERS = tuple("".join(word.capitalize() for word in name.split("_")) for name in REPORTED_STATES)

VARIABLES = [
    Variable("line", "Line", 'SHOW TAG VALUES FROM "machine" WITH KEY = "line"'),
    Variable(
        "station",
        "Station",
        f'SHOW TAG VALUES FROM "machine" WITH KEY = "station" WHERE {LINE}',
        multi=True,
        include_all=True,
    ),
    Variable(
        "exit",
        "Exit station",
        f'SHOW TAG VALUES FROM "machine" WITH KEY = "station" WHERE {LINE}',
        current="test",
        description="The line's last station: its good parts are the line's output.",
    ),
    Variable(
        "sensor",
        "Sensor",
        f'SHOW TAG VALUES FROM "sensor" WITH KEY = "sensor" WHERE {LINE}',
        multi=True,
        include_all=True,
    ),
    Variable(
        "signal",
        "PLC signal",
        values=("Power", "Temperature", "SpindleSpeed"),
        description="A process signal the PLCs publish (see the hardware file's opcua.signals).",
    ),
]


def _station_spreads() -> str:
    """Per station: the state times, parts and ideal cycle time over the time range."""
    total = " + ".join(f'spread("Time{name}")' for name in COUNTERS)
    return (
        f'SELECT {total} AS "total", spread("TimeDown") + spread("TimeWaitingRepair") AS "down", '
        'spread("TimeSetup") AS "setup", '
        'spread("PartsProduced") AS "good", spread("PartsScrapped") AS "scrap", '
        'last("IdealCycleTime") AS "ideal" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY "station"'
    )


AVAILABILITY = '(1 - ("down" + "setup") / "total")'
PERFORMANCE = '("ideal" * ("good" + "scrap") / ("total" - "down" - "setup"))'
QUALITY = '("good" / ("good" + "scrap"))'
OEE_SQL = (
    f'SELECT {AVAILABILITY} AS "availability", {PERFORMANCE} AS "performance", '
    f'{QUALITY} AS "quality", {AVAILABILITY} * {PERFORMANCE} * {QUALITY} AS "oee", '
    '"good", "scrap" '
    f'FROM ({_station_spreads()}) GROUP BY "station"'
)
WIP_SQL = (
    'SELECT sum("occupancy") AS "wip" FROM ('
    f'SELECT last("Occupancy") AS "occupancy" FROM "machine" {where(LINE)} GROUP BY "station")'
)
# Over time, each station's occupancy is drawn stacked: the top of the stack is the WIP. (A sum
# over a subquery with fill(previous) repeats points on InfluxDB 1.6, so the sum is not taken there.)
OCCUPANCY_SQL = (
    f'SELECT last("Occupancy") AS "occupancy" FROM "machine" {where(LINE)} '
    'GROUP BY time($__interval), "station" fill(previous)'
)


def _throughput() -> list[Panel]:
    line_output = Query(
        'SELECT non_negative_derivative(max("PartsProduced"), 1h) AS "output" '
        f'FROM "machine" {where(LINE, matches("station", "exit"))} GROUP BY time($__interval) fill(none)',
        fields=("output",),
    )
    per_station = Query(
        'SELECT non_negative_derivative(max("PartsProduced"), 1h) AS "parts/h" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY time($__interval), "station" fill(none)',
        fields=("parts/h",),
        group=("station",),
        alias="$tag_station",
    )
    wip_now = Query(WIP_SQL, fields=("wip",))
    good_out = Query(
        'SELECT spread("PartsProduced") AS "good parts" '
        f'FROM "machine" {where(LINE, matches("station", "exit"))}',
        fields=("good parts",),
    )
    scrap = Query(
        'SELECT sum("scrap") AS "scrapped" FROM ('
        f'SELECT spread("PartsScrapped") AS "scrap" FROM "machine" {where(LINE)} GROUP BY "station")',
        fields=("scrapped",),
    )
    per_hour = {"unit": "short", "decimals": 1, "min": 0, "color": {"mode": "palette-classic"}}
    return [
        Panel(
            "stat",
            "Line output",
            [line_output],
            width=4,
            height=5,
            description="Good parts per hour leaving the exit station (wall-clock hours: a "
            "simulated line at speed N shows N times its simulated rate).",
            options=stat_options(text_mode="value", color_mode="none") | {"graphMode": "area"},
            defaults={"unit": "short", "decimals": 1, "displayName": "parts/h"},
        ),
        Panel(
            "stat",
            "WIP now",
            [wip_now],
            width=4,
            height=5,
            description="Parts in the line now: the sum over stations of each one's latest Occupancy "
            "(parts in its buffer plus parts on its machines).",
            options=stat_options(text_mode="value", color_mode="none") | {"graphMode": "area"},
            defaults={"unit": "short", "decimals": 0, "displayName": "parts"},
        ),
        Panel(
            "stat",
            "Good parts out",
            [good_out],
            width=4,
            height=5,
            description="Good parts the exit station finished in the time range.",
            options=stat_options(text_mode="value", color_mode="value"),
            defaults={"unit": "short", "decimals": 0, "color": {"mode": "fixed", "fixedColor": "green"}},
        ),
        Panel(
            "stat",
            "Scrapped",
            [scrap],
            width=4,
            height=5,
            description="Parts scrapped at any station in the time range.",
            options=stat_options(text_mode="value", color_mode="value"),
            defaults={"unit": "short", "decimals": 0, "color": {"mode": "fixed", "fixedColor": "red"}},
        ),
        Panel(
            "timeseries",
            "Throughput per station",
            [per_station],
            width=8,
            height=10,
            description="Parts per hour each station finishes (good ones; from its PartsProduced counter).",
            options=timeseries_options(),
            defaults=per_hour | {"custom": {"drawStyle": "line", "lineInterpolation": "smooth"}},
        ),
        Panel(
            "timeseries",
            "Work in progress",
            [Query(OCCUPANCY_SQL, fields=("occupancy",), group=("station",), alias="$tag_station")],
            width=16,
            height=5,
            description="Parts in the line over time, stacked by station: each station's Occupancy "
            "(parts in its buffer plus parts on its machines); the top of the stack is the line's WIP.",
            options=timeseries_options(),
            defaults={
                "unit": "short",
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineInterpolation": "stepAfter",
                    "fillOpacity": 40,
                    "stacking": {"group": "A", "mode": "normal"},
                },
            },
        ),
    ]


def _oee() -> list[Panel]:
    oee = Query(
        OEE_SQL,
        fields=("availability", "performance", "quality", "oee", "good", "scrap"),
        group=("station",),
        format="table",
    )
    cells = {"type": "color-background", "mode": "gradient"}
    overrides = [
        by_name(name, unit="percentunit", decimals=1, thresholds=SHARE_THRESHOLDS, custom__cellOptions=cells)
        for name in ("availability", "performance", "quality", "oee")
    ]
    overrides += [by_name("good", unit="short", decimals=0), by_name("scrap", unit="short", decimals=0)]
    time_in_state = Query(
        "SELECT "
        + ", ".join(f'sum("{state}") AS "{state}"' for state in REPORTED_STATES)
        + " FROM (SELECT "
        + ", ".join(
            f'spread("Time{name}") AS "{state}"'
            for name, state in zip(COUNTERS, REPORTED_STATES, strict=True)
        )
        + f' FROM "machine" {where(LINE, STATION)} GROUP BY "station")',
        fields=REPORTED_STATES,
    )
    colours = [
        by_name(name, color={"mode": "fixed", "fixedColor": STATE_COLOURS[name]}) for name in REPORTED_STATES
    ]
    return [
        row("Stations"),
        Panel(
            "table",
            "OEE per station",
            [oee],
            width=14,
            height=9,
            description="Availability, performance and quality over the time range, from the "
            "stations' state-time and part counters (docs/kpis.md). Red below 60 %, green from 85 %.",
            options=table_options("oee", desc=False),
            defaults={"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            overrides=overrides,
            transformations=[organize(rename={"station": "Station"})],
        ),
        Panel(
            "piechart",
            "Where the time went",
            [time_in_state],
            width=10,
            height=9,
            description="Station time in each state over the range, summed over the selected stations.",
            options={
                "displayLabels": ["percent"],
                "legend": legend("right", "table", ("percent",)) | {"values": ["percent"]},
                "pieType": "donut",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "tooltip": tooltip("single"),
            },
            defaults={"unit": "s"},
            overrides=colours,
        ),
    ]


def _states() -> list[Panel]:
    state = Query(
        'SELECT last("State") AS "state" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY time($__interval), "station" fill(previous)',
        fields=("state",),
        group=("station",),
        alias="$tag_station",
    )
    mappings = [
        {
            "type": "value",
            "options": {
                str(code): {"color": colour, "index": code, "text": name} for code, name, colour in STATES
            },
        }
    ]
    lost = Query(
        'SELECT spread("TimeDown") AS "down", spread("TimeWaitingRepair") AS "waiting_repair", '
        'spread("TimeSetup") AS "setup", spread("TimeBlocked") AS "blocked", '
        'spread("TimeStarved") AS "starved" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY "station"',
        fields=("down", "waiting_repair", "setup", "blocked", "starved"),
        group=("station",),
        format="table",
    )
    counts = Query(
        'SELECT spread("PartsProduced") AS "good", spread("PartsScrapped") AS "scrap" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY "station"',
        fields=("good", "scrap"),
        group=("station",),
        format="table",
    )
    return [
        Panel(
            "state-timeline",
            "Station states",
            [state],
            width=24,
            height=8,
            description="Each station's state as its PLC shows it (a station with several "
            "machines shows the most significant one).",
            options={
                "alignValue": "left",
                "legend": legend(),
                "mergeValues": True,
                "rowHeight": 0.9,
                "showValue": "never",
                "tooltip": tooltip("single"),
            },
            defaults={
                "mappings": mappings,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds((None, "text")),
            },
        ),
        Panel(
            "barchart",
            "Downtime Pareto",
            [lost],
            width=12,
            height=9,
            description="Time each station lost, worst first: down (breakdowns and stops), waiting "
            "for a technician and set-up are availability losses; blocked and starved are the line's "
            "flow losses.",
            options=barchart_options("station", stacking="normal"),
            defaults={"unit": "s", "min": 0, "color": {"mode": "palette-classic"}},
            overrides=[
                by_name(name, color={"mode": "fixed", "fixedColor": colour})
                for _, name, colour in STATES
                if name in ("down", "waiting_repair", "setup", "blocked", "starved")
            ],
            transformations=[
                {
                    "id": "calculateField",
                    "options": {
                        "alias": "lost",
                        "mode": "reduceRow",
                        "reduce": {"include": ["down", "waiting_repair", "setup"], "reducer": "sum"},
                    },
                },
                sort_by("lost"),
                organize(exclude=("Time", "lost")),
            ],
        ),
        Panel(
            "bargauge",
            "Good and scrap per station",
            [counts],
            width=12,
            height=9,
            description="Parts each station finished good, and scrapped, in the time range.",
            options={
                "displayMode": "gradient",
                "legend": legend(),
                "maxVizHeight": 300,
                "minVizHeight": 16,
                "minVizWidth": 8,
                "namePlacement": "left",
                "orientation": "horizontal",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^(good|scrap)$/", "values": True},
                "showUnfilled": True,
                "sizing": "auto",
                "valueMode": "color",
            },
            defaults={
                "unit": "short",
                "decimals": 0,
                "min": 0,
                "displayName": "${__field.name} ${__data.fields.station}",
            },
            overrides=[
                by_name("good", color={"mode": "fixed", "fixedColor": "green"}),
                by_name("scrap", color={"mode": "fixed", "fixedColor": "red"}),
            ],
        ),
    ]


# Every good part's move out of a station, from the part events (docs/influx-schema.md): the event
# at station S says where the part goes next (`to`: a station or `exit`) and whether it was sent
# back (`reworked`). InfluxQL groups by tags only and `to` is a field, so the panel counts the
# events per (station, to, reworked) with Grafana's groupBy transformation.
GOOD = '"scrapped" = false'
FLOW_SQL = f'SELECT "station", "to", "reworked", "cycle_time_s" FROM "part" {where(LINE, STATION, GOOD)}'


def _flow() -> list[Panel]:
    flow = Query(FLOW_SQL, fields=("station", "to", "reworked", "cycle_time_s"), format="table")
    group = {
        "id": "groupBy",
        "options": {
            "fields": {
                "station": {"aggregations": [], "operation": "groupby"},
                "to": {"aggregations": [], "operation": "groupby"},
                "reworked": {"aggregations": [], "operation": "groupby"},
                "cycle_time_s": {"aggregations": ["count"], "operation": "aggregate"},
            }
        },
    }
    rework = [
        {
            "type": "value",
            "options": {
                "true": {"color": "orange", "index": 0, "text": "rework"},
                "false": {"color": "text", "index": 1, "text": ""},
            },
        }
    ]
    return [
        Panel(
            "table",
            "Flow between stations",
            [flow],
            width=12,
            height=9,
            description="Good parts moved from each station to the next in the time range, from the "
            "part events' station, `to` and `reworked` fields: the routes the products took, the "
            "parts sent back for rework (marked) and those leaving the line (to exit). On a chain "
            "every station passes its parts to the one after it.",
            options=table_options("parts"),
            defaults={"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            overrides=[
                by_name(
                    "parts", unit="short", decimals=0, custom__cellOptions={"type": "gauge", "mode": "basic"}
                ),
                by_name("rework", mappings=rework, custom__cellOptions={"type": "color-text"}),
            ],
            transformations=[
                group,
                organize(
                    exclude=(),
                    rename={
                        "station": "from",
                        "to": "to",
                        "reworked": "rework",
                        "cycle_time_s (count)": "parts",
                    },
                ),
                sort_by("parts"),
            ],
        ),
    ]


def _signals() -> list[Panel]:
    cycle = Query(
        'SELECT mean("cycle_time_s") AS "cycle time" '
        f'FROM "part" {where(LINE, STATION)} GROUP BY time($__interval), "station" fill(none)',
        fields=("cycle time",),
        group=("station",),
        alias="$tag_station",
    )
    sensors = Query(
        'SELECT mean("value") AS "value" '
        f'FROM "sensor" {where(LINE, STATION, matches("sensor", "sensor"))} '
        'GROUP BY time($__interval), "station", "sensor", "unit" fill(none)',
        fields=("value",),
        group=("station", "sensor", "unit"),
        alias="$tag_station $tag_sensor [$tag_unit]",
    )
    signal = Query(
        'SELECT mean("$signal") AS "$signal" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY time($__interval), "station" fill(none)',
        fields=("$signal",),
        group=("station",),
        alias="$tag_station",
    )
    lines = {"custom": {"drawStyle": "line", "lineInterpolation": "smooth", "showPoints": "never"}}
    return [
        row("Signals"),
        Panel(
            "timeseries",
            "Sensors",
            [sensors],
            width=12,
            height=9,
            description="The MQTT sensors of the selected stations (energy meters, vibration, ambient).",
            options=timeseries_options(),
            defaults=lines,
        ),
        Panel(
            "timeseries",
            "PLC signal: $signal",
            [signal],
            width=12,
            height=9,
            description="A process signal from the PLCs (choose it with the PLC signal variable).",
            options=timeseries_options(),
            defaults=lines,
        ),
        Panel(
            "timeseries",
            "Cycle times",
            [cycle],
            width=24,
            height=8,
            description="Mean cycle time of the parts each station finished (from the part events).",
            options=timeseries_options(),
            defaults={"unit": "s", "custom": {"drawStyle": "points", "pointSize": 4}},
        ),
    ]


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="fabbrica: line overview",
        description="Output, WIP, OEE, station states, losses and signals of one line.",
        variables=VARIABLES,
        panels=[*_throughput(), *_oee(), *_states(), *_flow(), *_signals()],
        refresh="10s",
        time_from="now-1h",
        tags=("fabbrica", "line"),
    )

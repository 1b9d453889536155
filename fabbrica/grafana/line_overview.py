"""The line overview: what the line makes, where its parts wait, how well each station runs.

Reads what the connectors write from the PLCs and sensors (`machine`, `sensor`, `part`):
output per station, work in progress, OEE per station, each station's state over time,
where the time goes (downtime Pareto), good and scrap counts, the flow of parts between
stations (routes, rework, exits: the part events' `to` and `reworked`), cycle times and live
signals.

OEE comes from each station's cumulative state-time counters over the dashboard's time
range (`spread()`: last minus first value), in the line's own (simulated) seconds, against
planned busy time as in ISO 22400-2 and docs/kpis.md (planned stops and preventive maintenance
are not losses; a counter the PLC does not publish counts as 0):

    total        = the sum of every TimeWorking ... TimeMaintenance counter
    planned      = total - dPlannedStop - dMaintenance            (planned busy time)
    lost         = dDown + dWaitingRepair + dSetup                (availability losses)
    availability = 1 - lost / planned
    performance  = IdealCycleTime * (dProduced + dScrapped) / (planned - lost)
    quality      = dProduced / (dProduced + dScrapped)
    oee          = availability * performance * quality

Energy per good part is the energy meters' kWh over the time range (`spread()` of each
station's `energy` sensor) over the good parts made in the same range: per station its own
parts, for the line the exit station's. InfluxQL cannot divide across measurements, so the
panels join the two answers in Grafana and divide there.
"""

from __future__ import annotations

from typing import Any

from fabbrica.grafana.model import (
    SHARE_THRESHOLDS,
    Annotation,
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
# one colour per state, keyed by every name of twin.station.STATE_NAMES (a missing one fails
# at import): losses warm, flow yellow and orange, planned time cool, outside it grey
STATE_COLOURS = {
    "working": "green",
    "blocked": "orange",
    "starved": "yellow",
    "down": "red",
    "setup": "blue",
    "stopped": "text",
    "waiting_repair": "purple",
    "planned_stop": "#8e8e8e",  # outside the shift calendar: neither production nor loss
    "off": "dark-yellow",  # a starved machine switched off
    "maintenance": "light-blue",  # planned downtime, beside set-up's blue
}
# (state code, name, colour) in twin.station's order, the codes the PLCs publish
STATES = tuple((code, name, STATE_COLOURS[name]) for code, name in enumerate(STATE_NAMES))
# the PLCs' TimeWorking, ..., TimeMaintenance counters
COUNTERS = tuple("".join(word.capitalize() for word in name.split("_")) for name in REPORTED_STATES)
COUNTER = {state: f"Time{name}" for state, name in zip(REPORTED_STATES, COUNTERS, strict=True)}
ENERGY = "\"sensor\" = 'energy'"  # the station's energy meter (kWh, running total)

# the State codes' names and colours, for every panel that shows a state
STATE_MAPPINGS = [
    {
        "type": "value",
        "options": {
            str(code): {"color": colour, "index": code, "text": name} for code, name, colour in STATES
        },
    }
]

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
    """Per station: the time in each reported state, parts and ideal cycle time over the time range.

    One subquery per counter, added up per station: a counter the PLC does not publish (a line
    without a calendar or maintenance) adds nothing, where naming it in one SELECT would make
    every sum with it null. The first subquery gives the parts, the ideal cycle time and a 0 for
    every state, so that each sum has a term.
    """
    zeros = ", ".join(f'0 * spread("PartsProduced") AS "{state}"' for state in (*REPORTED_STATES, "total"))
    terms = [
        f'SELECT {zeros}, spread("PartsProduced") AS "good", spread("PartsScrapped") AS "scrap", '
        f'last("IdealCycleTime") AS "ideal" FROM "machine" {where(LINE, STATION)} GROUP BY "station"'
    ]
    terms += [
        f'SELECT spread("{counter}") AS "{state}", spread("{counter}") AS "total" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY "station"'
        for state, counter in COUNTER.items()
    ]
    sums = ", ".join(
        f'sum("{name}") AS "{name}"' for name in (*REPORTED_STATES, "total", "good", "scrap", "ideal")
    )
    return f'SELECT {sums} FROM {", ".join(f"({term})" for term in terms)} {where()} GROUP BY "station"'


PLANNED = '("total" - "planned_stop" - "maintenance")'
LOST = '("down" + "waiting_repair" + "setup")'
AVAILABILITY = f"(1 - {LOST} / {PLANNED})"
PERFORMANCE = f'("ideal" * ("good" + "scrap") / ({PLANNED} - {LOST}))'
QUALITY = '("good" / ("good" + "scrap"))'
OEE_SQL = (
    f'SELECT {PLANNED} / "total" AS "planned", {AVAILABILITY} AS "availability", '
    f'{PERFORMANCE} AS "performance", {QUALITY} AS "quality", '
    f'{AVAILABILITY} * {PERFORMANCE} * {QUALITY} AS "oee", "good", "scrap" '
    f'FROM ({_station_spreads()}) GROUP BY "station"'
)
# each station's share of its time in every reported state (the shares sum to 1)
SHARES_SQL = (
    "SELECT "
    + ", ".join(f'"{state}" / "total" AS "{state}"' for state in REPORTED_STATES)
    + f' FROM ({_station_spreads()}) GROUP BY "station"'
)
# the line: every station's time added up, so each share is of all station time
LINE_SHARES_SQL = (
    'SELECT 1 - sum("planned_stop") / sum("total") AS "planned", '
    'sum("waiting_repair") / sum("total") AS "waiting_repair", '
    'sum("maintenance") / sum("total") AS "maintenance", sum("off") / sum("total") AS "off" '
    f"FROM ({_station_spreads()})"
)
# energy per good part, per station: the two answers joined on "station" in Grafana
STATION_ENERGY_SQL = (
    f'SELECT spread("value") AS "energy" FROM "sensor" {where(LINE, STATION, ENERGY)} GROUP BY "station"'
)
STATION_GOOD_SQL = (
    f'SELECT spread("PartsProduced") AS "good" FROM "machine" {where(LINE, STATION)} GROUP BY "station"'
)
# and for the line: every station's energy over the exit station's good parts (joined on time)
LINE_ENERGY_SQL = (
    'SELECT sum("energy") AS "energy" FROM ('
    f'SELECT spread("value") AS "energy" FROM "sensor" {where(LINE, ENERGY)} GROUP BY "station")'
)
LINE_GOOD_SQL = (
    f'SELECT spread("PartsProduced") AS "good" FROM "machine" {where(LINE, matches("station", "exit"))}'
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
        fields=("planned", "availability", "performance", "quality", "oee", "good", "scrap"),
        group=("station",),
        format="table",
    )
    cells = {"type": "color-background", "mode": "gradient"}
    overrides = [
        by_name(name, unit="percentunit", decimals=1, thresholds=SHARE_THRESHOLDS, custom__cellOptions=cells)
        for name in ("availability", "performance", "quality", "oee")
    ]
    overrides += [
        by_name("planned", unit="percentunit", decimals=1),
        by_name("good", unit="short", decimals=0),
        by_name("scrap", unit="short", decimals=0),
    ]
    time_in_state = Query(
        "SELECT "
        + ", ".join(f'sum("{state}") AS "{state}"' for state in REPORTED_STATES)
        + f" FROM ({_station_spreads()})",
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
            description="Planned share (the time inside the shift calendar's planned production), "
            "and availability, performance and quality against planned busy time over the time "
            "range (ISO 22400-2: planned stops and preventive maintenance are not losses), from "
            "the stations' state-time and part counters (docs/kpis.md). Red below 60 %, green from 85 %.",
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
            description="Station time in each state over the range, summed over the selected "
            "stations: planned stops (grey), maintenance, switched off and waiting for repair included.",
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


def _join(by: str) -> dict[str, Any]:
    """Grafana's outer join of the panel's answers on one field (InfluxQL cannot join measurements)."""
    return {"id": "joinByField", "options": {"byField": by, "mode": "outer"}}


def _per_good_part(alias: str) -> dict[str, Any]:
    """A column `alias` = energy / good (kWh per good part), computed in Grafana."""
    return {
        "id": "calculateField",
        "options": {
            "alias": alias,
            "mode": "binary",
            "binary": {
                "left": {"matcher": {"id": "byName", "options": "energy"}},
                "operator": "/",
                "right": {"matcher": {"id": "byName", "options": "good"}},
            },
        },
    }


def _plant_time_and_energy() -> list[Panel]:
    shares = Query(LINE_SHARES_SQL, fields=("planned", "waiting_repair", "maintenance", "off"))
    line_energy = Query(LINE_ENERGY_SQL, fields=("energy",), format="table")
    line_good = Query(LINE_GOOD_SQL, fields=("good",), format="table")
    station_energy = Query(STATION_ENERGY_SQL, fields=("energy",), group=("station",), format="table")
    station_good = Query(STATION_GOOD_SQL, fields=("good",), group=("station",), format="table")
    now = Query(
        f'SELECT last("State") AS "state" FROM "machine" {where(LINE, STATION)} GROUP BY "station"',
        fields=("state",),
        group=("station",),
        alias="$tag_station",
    )
    station_shares = Query(SHARES_SQL, fields=REPORTED_STATES, group=("station",), format="table")
    kwh = {"unit": "kwatth", "decimals": 3, "min": 0}
    return [
        row("Planned time, repair, maintenance and energy"),
        Panel(
            "stat",
            "Planned time and where it went",
            [shares],
            width=12,
            height=5,
            description="Over the time range and the selected stations' time: the share inside the "
            "shift calendar's planned production (the rest are planned stops: no shift, breaks, "
            "holidays), and the shares waiting for a technician, in preventive maintenance and "
            "switched off after idling (from the state-time counters).",
            options=stat_options(color_mode="value"),
            defaults={"unit": "percentunit", "decimals": 1, "min": 0, "max": 1},
            overrides=[
                by_name("planned", displayName="planned production", color=_fixed("green")),
                by_name("waiting_repair", displayName="waiting for repair", color=_fixed("waiting_repair")),
                by_name("maintenance", color=_fixed("maintenance")),
                by_name("off", displayName="switched off", color=_fixed("off")),
            ],
        ),
        Panel(
            "stat",
            "Energy per good part",
            [line_energy, line_good],
            width=6,
            height=5,
            description="The line's kWh over the time range (every station's energy meter) over the "
            "good parts the exit station made in the same range.",
            options=stat_options(text_mode="value", fields="/^kWh per good part$/", color_mode="none"),
            defaults=kwh,
            transformations=[_join("Time"), _per_good_part("kWh per good part")],
        ),
        Panel(
            "stat",
            "Energy used",
            [line_energy],
            width=6,
            height=5,
            description="kWh the line's energy meters counted over the time range (all stations).",
            options=stat_options(text_mode="value", color_mode="none"),
            defaults=kwh | {"decimals": 2},
        ),
        Panel(
            "stat",
            "Station states now",
            [now],
            width=12,
            height=7,
            description="Each station's latest state, in the state timeline's colours: waiting for "
            "repair (purple), maintenance, switched off, in a planned stop (grey) ...",
            options=stat_options(color_mode="background"),
            defaults={
                "mappings": STATE_MAPPINGS,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds((None, "text")),
            },
        ),
        Panel(
            "table",
            "Energy per good part per station",
            [station_energy, station_good],
            width=12,
            height=7,
            description="Per station: kWh its energy meter counted over the time range, the good "
            "parts it made in the same range, and their ratio.",
            options=table_options("kWh per good part"),
            defaults={"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            overrides=[
                by_name("energy", unit="kwatth", decimals=2),
                by_name("good", unit="short", decimals=0),
                by_name("kWh per good part", unit="kwatth", decimals=3),
            ],
            transformations=[
                organize(),
                _join("station"),
                _per_good_part("kWh per good part"),
                organize(exclude=(), rename={"station": "Station", "good": "good parts"}),
            ],
        ),
        Panel(
            "barchart",
            "Time shares per station",
            [station_shares],
            width=24,
            height=8,
            description="Each station's time over the range by state, as shares: planned stops, "
            "maintenance, waiting for repair and switched off beside the usual states.",
            options=barchart_options("station", stacking="normal"),
            defaults={"unit": "percentunit", "min": 0, "max": 1, "color": {"mode": "palette-classic"}},
            overrides=[by_name(state, color=_fixed(state)) for state in REPORTED_STATES],
            transformations=[organize()],
        ),
    ]


def _fixed(colour_or_state: str) -> dict[str, str]:
    """A fixed colour: a state's (STATE_COLOURS) or a Grafana colour."""
    return {"mode": "fixed", "fixedColor": STATE_COLOURS.get(colour_or_state, colour_or_state)}


def _states() -> list[Panel]:
    state = Query(
        'SELECT last("State") AS "state" '
        f'FROM "machine" {where(LINE, STATION)} GROUP BY time($__interval), "station" fill(previous)',
        fields=("state",),
        group=("station",),
        alias="$tag_station",
    )
    losses = ("down", "waiting_repair", "setup", "blocked", "starved", "off")
    lost = Query(
        "SELECT "
        + ", ".join(f'"{state}"' for state in losses)
        + f' FROM ({_station_spreads()}) GROUP BY "station"',
        fields=losses,
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
                "mappings": STATE_MAPPINGS,
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
            "for a technician and set-up are availability losses; blocked, starved and switched off "
            "are the line's flow losses. Planned stops and maintenance are not losses.",
            options=barchart_options("station", stacking="normal"),
            defaults={"unit": "s", "min": 0, "color": {"mode": "palette-classic"}},
            overrides=[
                by_name(name, color={"mode": "fixed", "fixedColor": colour})
                for _, name, colour in STATES
                if name in losses
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


# every advice of the twin, its approval or rejection and its write to the PLC (twinloop/advise.py):
# what was changed, by whom, and whether it reached the line
ANNOTATIONS = [
    Annotation(
        "Twin advice",
        f'SELECT "text", "decision" FROM "advice" {where(LINE)}',
        text_column="text",
        tags_column="decision",
        color="#FF9830",
    )
]


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="fabbrica: line overview",
        description="Output, WIP, OEE against planned time, station states, losses, planned time, "
        "repair, maintenance, energy per good part and signals of one line.",
        variables=VARIABLES,
        panels=[*_throughput(), *_oee(), *_states(), *_plant_time_and_energy(), *_flow(), *_signals()],
        refresh="10s",
        time_from="now-1h",
        tags=("fabbrica", "line"),
        annotations=ANNOTATIONS,
    )

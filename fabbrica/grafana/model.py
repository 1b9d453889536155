"""Dashboards as data: panels, their InfluxQL queries and the template variables they use.

A `Dashboard` holds `Panel`s; each panel holds `Query`s. `Dashboard.to_json()` gives the
classic dashboard JSON model of the Grafana version the compose file runs
(`GRAFANA_VERSION`, `SCHEMA_VERSION`), with only current (React) panel types. Every query
also says which columns and which GROUP BY tags its answer must have, so the tests can run
it against InfluxDB and check the panel will get what it draws.

    panel = Panel("timeseries", "WIP", [Query(WIP_SQL, fields=("wip",))], width=12)
    board = Dashboard("fabbrica-line", "Line overview", variables=[...], panels=[panel])
    json.dumps(board.to_json(), indent=2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin.kpi_catalogue import Kpi

GRAFANA_VERSION = "13.2.1"  # the image tag docker-compose.yml runs
SCHEMA_VERSION = 42  # the dashboard schema version of that Grafana
DATASOURCE_UID = "fabbrica-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
PANEL_TYPES = ("timeseries", "stat", "table", "state-timeline", "barchart", "bargauge", "piechart", "row")
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    """One InfluxQL query of a panel (raw mode), and what its answer must hold.

    `fields`: columns every returned series has (besides time); `group`: tags every series
    carries (its GROUP BY tags); `format`: "time_series" or "table"; `alias`: Grafana's
    series name pattern, e.g. "$tag_station".
    """

    text: str
    fields: tuple[str, ...]
    group: tuple[str, ...] = ()
    format: str = "time_series"
    alias: str | None = None

    def target(self, ref: str) -> dict[str, Any]:
        target: dict[str, Any] = {
            "datasource": DATASOURCE,
            "query": self.text,
            "rawQuery": True,
            "refId": ref,
            "resultFormat": self.format,
        }
        if self.alias:
            target["alias"] = self.alias
        return target


@dataclass(frozen=True)
class Variable:
    """A template variable: a query variable (InfluxQL `SHOW TAG VALUES ...`) or a custom list."""

    name: str
    label: str
    query: str = ""
    values: tuple[str, ...] = ()  # custom variables only
    multi: bool = False
    include_all: bool = False
    current: str | None = None
    description: str = ""

    @property
    def custom(self) -> bool:
        return bool(self.values)

    def to_json(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "hide": 0,
            "multi": self.multi,
            "includeAll": self.include_all,
            "skipUrlSync": False,
        }
        if self.custom:
            chosen = self.current or self.values[0]
            return {
                **base,
                "type": "custom",
                "query": ",".join(self.values),
                "current": {"selected": True, "text": [chosen], "value": [chosen]}
                if self.multi
                else {"selected": True, "text": chosen, "value": chosen},
                "options": [
                    {"selected": value == chosen, "text": value, "value": value} for value in self.values
                ],
            }
        current: dict[str, Any] = {}
        if self.include_all:
            current = {"selected": True, "text": ["All"], "value": ["$__all"]}
        elif self.current:
            current = {"selected": True, "text": self.current, "value": self.current}
        return {
            **base,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": self.query,
            "query": self.query,
            "refresh": 2,  # on time range change: new stations, scenarios and runs appear
            "regex": "",
            "sort": 1,
            "current": current,
            "options": [],
        }


@dataclass(frozen=True)
class Annotation:
    """Annotations from an InfluxQL query: one per row, its text from `text_column`."""

    name: str
    query: str
    text_column: str
    tags_column: str = ""
    color: str = "#8F3BB8"

    def to_json(self) -> dict[str, Any]:
        return {
            "datasource": DATASOURCE,
            "enable": True,
            "iconColor": self.color,
            "name": self.name,
            "query": self.query,
            "textColumn": self.text_column,
            "tagsColumn": self.tags_column,
        }


@dataclass
class Panel:
    """One panel: its type, title, queries, size in grid units, and Grafana options."""

    kind: str
    title: str
    queries: list[Query]
    width: int = 12
    height: int = 8
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    repeat: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PANEL_TYPES:
            raise ValueError(f"panel {self.title!r}: kind must be one of {', '.join(PANEL_TYPES)}")
        if not 1 <= self.width <= GRID_WIDTH:
            raise ValueError(f"panel {self.title!r}: width must be 1..{GRID_WIDTH}, got {self.width}")

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
        }
        if self.kind == "row":
            return {**panel, "collapsed": False, "panels": []}
        panel.update(
            datasource=DATASOURCE,
            targets=[query.target(chr(ord("A") + i)) for i, query in enumerate(self.queries)],
            fieldConfig={"defaults": self.defaults, "overrides": self.overrides},
            options=self.options,
        )
        if self.transformations:
            panel["transformations"] = self.transformations
        if self.repeat:
            panel.update(repeat=self.repeat, repeatDirection="h", maxPerRow=3)
        return panel


def row(title: str) -> Panel:
    """A row header spanning the grid."""
    return Panel("row", title, [], width=GRID_WIDTH, height=1)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    variables: list[Variable]
    panels: list[Panel]
    annotations: list[Annotation] = field(default_factory=list)
    refresh: str = "10s"
    time_from: str = "now-1h"
    time_to: str = "now"  # later than now for a dashboard that draws forecasts
    tags: tuple[str, ...] = ("fabbrica",)

    def layout(self) -> list[tuple[Panel, int, int]]:
        """Panels placed left to right, each as high as the panels above it allow; rows span the grid."""
        placed = []
        heights = [0] * GRID_WIDTH  # the free y of each grid column
        x = 0
        for panel in self.panels:
            if panel.kind == "row":
                y = max(heights)
                placed.append((panel, 0, y))
                heights = [y + panel.height] * GRID_WIDTH
                x = 0
                continue
            if x + panel.width > GRID_WIDTH:
                x = 0
            y = max(heights[x : x + panel.width])
            placed.append((panel, x, y))
            heights[x : x + panel.width] = [y + panel.height] * panel.width
            x += panel.width
        return placed

    def to_json(self) -> dict[str, Any]:
        builtin = {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }
        return {
            "annotations": {"list": [builtin, *(a.to_json() for a in self.annotations)]},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "links": [
                {
                    "asDropdown": True,
                    "icon": "external link",
                    "includeVars": False,
                    "keepTime": True,
                    "tags": ["fabbrica"],
                    "targetBlank": False,
                    "title": "fabbrica",
                    "type": "dashboards",
                }
            ],
            "panels": [
                panel.to_json(index, x, y) for index, (panel, x, y) in enumerate(self.layout(), start=1)
            ],
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": list(self.tags),
            "templating": {"list": [variable.to_json() for variable in self.variables]},
            "time": {"from": self.time_from, "to": self.time_to},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }


# -- field configuration helpers -----------------------------------------------------------------


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    """Absolute thresholds: (None, base colour), then (value, colour) upwards."""
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


SHARE_THRESHOLDS = thresholds((None, "red"), (0.6, "orange"), (0.85, "green"))
# twin.kpi_catalogue's units as Grafana unit ids; a count of parts and a unitless value need none
KPI_UNITS = {
    "s": "s",
    "share": "percentunit",
    "kWh": "kwatth",
    "kWh/part": "suffix: kWh/part",
    "kWh/h": "suffix: kWh/h",
    "parts/h": "suffix: parts/h",
}
UNITLESS = ("", "parts")


def kpi_unit(declared: Kpi) -> str | None:
    """The Grafana unit of a declared KPI (KPI_UNITS), None for a count or a unitless value."""
    return None if declared.unit in UNITLESS else KPI_UNITS[declared.unit]


def kpi_field(declared: Kpi) -> dict[str, Any]:
    """Grafana field properties for a declared KPI's value: its unit, no decimals for a count."""
    properties: dict[str, Any] = {}
    if unit := kpi_unit(declared):
        properties["unit"] = unit
    if declared.type is int:
        properties["decimals"] = 0
    return properties


def by_name(name: str, **properties: Any) -> dict[str, Any]:
    """A field override matched by field name: property ids like "custom.width" as keyword names."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def by_regexp(pattern: str, **properties: Any) -> dict[str, Any]:
    """A field override matched by a regular expression on the field name, like `by_name`."""
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def organize(exclude: tuple[str, ...] = ("Time",), rename: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": "organize",
        "options": {
            "excludeByName": dict.fromkeys(exclude, True),
            "indexByName": {},
            "renameByName": rename or {},
        },
    }


def sort_by(field_name: str, desc: bool = True) -> dict[str, Any]:
    return {"id": "sortBy", "options": {"fields": {}, "sort": [{"desc": desc, "field": field_name}]}}


def matrix(columns: str, rows: str, values: str) -> dict[str, Any]:
    """Long rows (row, column, value) into one row per `rows` value and one column per `columns` value."""
    return {
        "id": "groupingToMatrix",
        "options": {"columnField": columns, "rowField": rows, "valueField": values, "emptyValue": "null"},
    }


def legend(placement: str = "bottom", mode: str = "list", calcs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"calcs": list(calcs), "displayMode": mode, "placement": placement, "showLegend": True}


def tooltip(mode: str = "multi") -> dict[str, Any]:
    return {"hideZeros": False, "mode": mode, "sort": "desc"}


def timeseries_options() -> dict[str, Any]:
    return {"legend": legend(), "tooltip": tooltip()}


def stat_options(
    text_mode: str = "value_and_name", fields: str = "", color_mode: str = "value"
) -> dict[str, Any]:
    return {
        "colorMode": color_mode,
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "percentChangeColorMode": "standard",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": fields, "values": False},
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }


def table_options(sort_field: str | None = None, desc: bool = True) -> dict[str, Any]:
    options: dict[str, Any] = {
        "cellHeight": "sm",
        "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
        "showHeader": True,
    }
    if sort_field:
        options["sortBy"] = [{"desc": desc, "displayName": sort_field}]
    return options


def barchart_options(x_field: str, stacking: str = "none") -> dict[str, Any]:
    return {
        "barRadius": 0,
        "barWidth": 0.8,
        "fullHighlight": False,
        "groupWidth": 0.7,
        "legend": legend(),
        "orientation": "auto",
        "showValue": "never",
        "stacking": stacking,
        "tooltip": tooltip(),
        "xField": x_field,
        "xTickLabelRotation": 0,
        "xTickLabelSpacing": 0,
    }


# -- InfluxQL helpers ----------------------------------------------------------------------------


def matches(tag: str, variable: str) -> str:
    """`"tag" =~ /^$variable$/`: Grafana fills in one value, or (a|b|c) for several."""
    return f'"{tag}" =~ /^${variable}$/'


def where(*conditions: str) -> str:
    """A WHERE clause of the conditions and the dashboard's time range."""
    return "WHERE " + " AND ".join([*conditions, "$timeFilter"])


def lasts(*fields: str | tuple[str, str]) -> str:
    """`last("a") AS "a", last("b") AS "B"` for fields given as names or (field, alias) pairs."""
    parts = []
    for item in fields:
        name, alias = (item, item) if isinstance(item, str) else item
        parts.append(f'last("{name}") AS "{alias}"')
    return ", ".join(parts)

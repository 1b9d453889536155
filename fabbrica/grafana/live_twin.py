"""The live twin: the shift's output so far with the forecast fan to its end, the chance of the
target, the predicted bottleneck, and how well the forecasts of past shifts did.

Reads what `fabbrica twin live` writes (docs/live-twin.md): `forecast` at every tick (the parts
made in the shift so far, the quantiles of the shift's output at its end, the target's
probability and ETA, the bottleneck), `forecast_path` (the fan, at future instants on a grid
fixed per shift) and `forecast_score` (each forecast of an ended shift against what the shift
made). The time range runs into the future, so that the fan to the shift end is in view.
"""

from __future__ import annotations

from fabbrica.grafana.model import (
    Dashboard,
    Panel,
    Query,
    Variable,
    by_name,
    legend,
    matches,
    organize,
    row,
    stat_options,
    table_options,
    thresholds,
    timeseries_options,
    tooltip,
    where,
)

UID = "fabbrica-live-twin"
LINE = matches("line", "line")
SHIFT = matches("shift", "shift")
PROBABILITY_THRESHOLDS = thresholds((None, "red"), (0.5, "orange"), (0.8, "green"))
COVERAGE_THRESHOLDS = thresholds((None, "red"), (0.6, "orange"), (0.7, "green"))

VARIABLES = [
    Variable("line", "Line", 'SHOW TAG VALUES FROM "forecast" WITH KEY = "line"'),
    Variable(
        "shift",
        "Shift",
        f'SHOW TAG VALUES FROM "forecast" WITH KEY = "shift" WHERE {LINE}',
        multi=True,
        include_all=True,
    ),
]

LATEST = Query(
    'SELECT last("produced") AS "made", last("p10") AS "P10", last("p50") AS "P50", '
    'last("p90") AS "P90", last("target") AS "target" '
    f'FROM "forecast" {where(LINE, SHIFT)}',
    fields=("made", "P10", "P50", "P90", "target"),
)
PROBABILITY_NOW = Query(
    f'SELECT last("target_probability") AS "probability" FROM "forecast" {where(LINE, SHIFT)}',
    fields=("probability",),
)
ETA_NOW = Query(
    f'SELECT last("eta_p50") AS "ETA P50" FROM "forecast" {where(LINE, SHIFT)}',
    fields=("ETA P50",),
)
BOTTLENECK_NOW = Query(
    f'SELECT last("bottleneck") AS "bottleneck" FROM "forecast" {where(LINE, SHIFT)}',
    fields=("bottleneck",),
)
# the shifts do not overlap, so each of these is one series over time, with gaps between shifts
OUTPUT = Query(
    'SELECT last("produced") AS "made", last("target") AS "target" '
    f'FROM "forecast" {where(LINE, SHIFT)} GROUP BY time($__interval) fill(none)',
    fields=("made", "target"),
    alias="$col",
)
FAN = Query(
    'SELECT last("p10") AS "P10", last("p50") AS "P50", last("p90") AS "P90" '
    f'FROM "forecast_path" {where(LINE, SHIFT)} GROUP BY time($__interval) fill(none)',
    fields=("P10", "P50", "P90"),
    alias="$col",
)
PROBABILITY = Query(
    'SELECT last("target_probability") AS "probability" '
    f'FROM "forecast" {where(LINE, SHIFT)} GROUP BY time($__interval), "shift" fill(none)',
    fields=("probability",),
    group=("shift",),
    alias="$tag_shift",
)
BOTTLENECK = Query(
    'SELECT last("bottleneck") AS "bottleneck" '
    f'FROM "forecast" {where(LINE, SHIFT)} GROUP BY time($__interval) fill(none)',
    fields=("bottleneck",),
)
SCORES = Query(
    'SELECT last("actual") AS "made", count("error") AS "forecasts", mean("inside") AS "coverage", '
    'mean("abs_error") AS "mean |error|", first("error") AS "first error", last("error") AS "last error" '
    f'FROM "forecast_score" {where(LINE, SHIFT)} GROUP BY "date", "shift"',
    fields=("made", "forecasts", "coverage", "mean |error|", "first error", "last error"),
    group=("date", "shift"),
    format="table",
)
ERRORS = Query(
    'SELECT mean("error") AS "error" '
    f'FROM "forecast_score" {where(LINE, SHIFT)} GROUP BY time($__interval), "shift" fill(none)',
    fields=("error",),
    group=("shift",),
    alias="$tag_shift",
)


def _now() -> list[Panel]:
    parts = {"unit": "short", "decimals": 0}
    return [
        Panel(
            "stat",
            "This shift: made and forecast",
            [LATEST],
            width=10,
            height=5,
            description="Parts made in the shift so far, and the latest forecast of what it will "
            "have made by its end: P10, P50 (the median) and P90 over the twin's replications.",
            options=stat_options(color_mode="value"),
            defaults={**parts, "color": {"mode": "fixed", "fixedColor": "text"}},
            overrides=[
                by_name("made", color={"mode": "fixed", "fixedColor": "green"}),
                by_name("P50", color={"mode": "fixed", "fixedColor": "blue"}),
                by_name("target", color={"mode": "fixed", "fixedColor": "red"}),
            ],
        ),
        Panel(
            "stat",
            "Target probability",
            [PROBABILITY_NOW],
            width=4,
            height=5,
            description="Share of the replications that reach the shift's target by its end.",
            options=stat_options(text_mode="value", color_mode="background"),
            defaults={
                "unit": "percentunit",
                "decimals": 0,
                "min": 0,
                "max": 1,
                "color": {"mode": "thresholds"},
                "thresholds": PROBABILITY_THRESHOLDS,
            },
        ),
        Panel(
            "stat",
            "Target reached (P50)",
            [ETA_NOW],
            width=5,
            height=5,
            description="When half of the replications have reached the target. Empty when fewer "
            "than half reach it by the shift end.",
            options=stat_options(text_mode="value", color_mode="none"),
            defaults={"unit": "dateTimeAsLocalNoDateIfToday"},
        ),
        Panel(
            "stat",
            "Predicted bottleneck",
            [BOTTLENECK_NOW],
            width=5,
            height=5,
            description="The station that holds the line back longest between now and the shift end, "
            "in the latest forecast.",
            options=stat_options(text_mode="value", fields="/^bottleneck$/", color_mode="none"),
            defaults={"color": {"mode": "fixed", "fixedColor": "orange"}},
        ),
    ]


def _over_time() -> list[Panel]:
    line = {"lineWidth": 2, "fillOpacity": 0, "showPoints": "never", "spanNulls": False}
    return [
        Panel(
            "timeseries",
            "Output and forecast to the shift end",
            [OUTPUT, FAN],
            width=24,
            height=11,
            description="Parts made in the shift (green, at each tick of the live twin), the "
            "shift's target (red), and the latest forecast's fan to the shift end: P50 (blue) "
            "inside the band from P10 to P90. Where the band lies in the past it shows the last "
            "forecast made before each instant.",
            options=timeseries_options(),
            defaults={"unit": "short", "decimals": 0, "min": 0, "custom": line},
            overrides=[
                by_name("made", color={"mode": "fixed", "fixedColor": "green"}, custom__lineWidth=3),
                by_name(
                    "target",
                    color={"mode": "fixed", "fixedColor": "red"},
                    custom__lineStyle={"fill": "dash", "dash": [10, 10]},
                ),
                by_name("P50", color={"mode": "fixed", "fixedColor": "blue"}),
                by_name("P10", color={"mode": "fixed", "fixedColor": "blue"}, custom__lineWidth=0),
                by_name(
                    "P90",
                    color={"mode": "fixed", "fixedColor": "blue"},
                    custom__lineWidth=0,
                    custom__fillOpacity=20,
                    custom__fillBelowTo="P10",
                ),
            ],
        ),
        Panel(
            "timeseries",
            "Target probability over time",
            [PROBABILITY],
            width=12,
            height=8,
            description="At each tick, the share of replications that reach the shift's target "
            "by its end; one line per shift.",
            options=timeseries_options(),
            defaults={
                "unit": "percentunit",
                "min": 0,
                "max": 1,
                "custom": {**line, "drawStyle": "line", "lineInterpolation": "stepAfter"},
                "color": {"mode": "palette-classic"},
            },
        ),
        Panel(
            "state-timeline",
            "Predicted bottleneck",
            [BOTTLENECK],
            width=12,
            height=8,
            description="The bottleneck each tick's forecast predicts, over time.",
            options={
                "alignValue": "left",
                "legend": legend(),
                "mergeValues": True,
                "rowHeight": 0.9,
                "showValue": "auto",
                "tooltip": tooltip("single"),
            },
            defaults={"color": {"mode": "palette-classic-by-name"}},
        ),
    ]


def _scores() -> list[Panel]:
    return [
        row("Past shifts: forecasts against what the shift made"),
        Panel(
            "table",
            "Scores of past shifts",
            [SCORES],
            width=14,
            height=9,
            description="Per shift: the parts it made, how many forecasts were made during it, the "
            "share of them whose P10-P90 held the actual output (coverage: 80 % for a twin that is "
            "right), their mean absolute error (actual - P50), and the error of the first and of "
            "the last forecast.",
            options=table_options("date"),
            defaults={"unit": "short", "decimals": 1},
            overrides=[
                by_name(
                    "coverage",
                    unit="percentunit",
                    decimals=0,
                    thresholds=COVERAGE_THRESHOLDS,
                    custom__cellOptions={"type": "color-background"},
                    color={"mode": "thresholds"},
                ),
                by_name("made", decimals=0),
                by_name("forecasts", decimals=0),
            ],
            transformations=[organize()],
        ),
        Panel(
            "timeseries",
            "Forecast error (actual - P50)",
            [ERRORS],
            width=10,
            height=9,
            description="The error of each forecast of an ended shift, at the time it was made: "
            "it shrinks towards the shift end.",
            options=timeseries_options(),
            defaults={
                "unit": "short",
                "decimals": 1,
                "custom": {"drawStyle": "points", "pointSize": 6},
                "color": {"mode": "palette-classic"},
            },
        ),
    ]


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="Live twin",
        description="The shift forecast of `fabbrica twin live`: output, fan, target, bottleneck, scores.",
        variables=VARIABLES,
        panels=[*_now(), *_over_time(), *_scores()],
        refresh="30s",
        time_from="now-8h",
        time_to="now+8h",
    )

"""The generated dashboards read back through Grafana's own schema, as grafana-foundation-sdk types it.

No Grafana runs where the tests run, so the closest check of the JSON is the SDK's models,
generated from Grafana's schemas (its "next" line, the newest it has; see docs/grafana.md).
Their `from_json` checks nothing by itself: it copies the keys it knows and drops the rest.
So a dashboard passes when

- every key survives `from_json` then `to_json` with its value (a misspelt or misplaced
  key is dropped), apart from `SCHEMA_GAPS`, keys Grafana reads that the schema lacks;
- every value fits the type the SDK declares for it: numbers, booleans, and the enums
  (text modes, legend modes, stacking, cell heights, colour modes, variable refresh...);
- every unit is one of the SDK's unit ids, or a custom `suffix:`/`prefix:`/... unit.

Not covered, because the SDK types them as free dicts or strings: InfluxDB targets (it has
no InfluxDB query type), transformation options, override property values, panel type
names, datasource refs. tests/grafana/test_dashboards.py and test_queries.py check those.
"""

from __future__ import annotations

import copy
import enum
import json
import re
import tomllib
import types
import typing
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import pytest
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.dashboard import Dashboard

from ..connectors.conftest import ROOT
from .test_dashboards import BOARDS

register_default_plugins()

# Keys Grafana reads that the SDK's schema does not describe, by JSON path, with the reason.
SCHEMA_GAPS = (
    # the variable's query as the variable editor shows it; Grafana writes it on every save
    r"/templating/list\[\d+\]/definition",
    # the InfluxQL annotation in its classic form: the InfluxDB datasource's
    # migrateLegacyAnnotation turns query/textColumn/tagsColumn into the annotation's target
    r"/annotations/list\[\d+\]/(query|textColumn|tagsColumn)",
    # rows: the schema's RowPanel has no description (a panel's has, so only rows match)
    r"/panels\[\d+\]/description",
    # the table footer's fields: the schema says a list, Grafana's own exports carry ""
    # for "all numeric fields", as our dashboards do
    r"\.panels\[\d+\]\.options\.footer\.fields",
)
UNITS = {getattr(units, name) for name in units.__annotations__}
CUSTOM_UNITS = ("suffix:", "prefix:", "si:", "count:", "currency:", "time:")


def schema_problems(board: dict[str, Any]) -> list[str]:
    """What the SDK's schema finds wrong with a dashboard's JSON, one line per problem."""
    try:
        model = Dashboard.from_json(copy.deepcopy(board))
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # e.g. a mapping of unknown type
        return [f"the SDK cannot read it: {error!r}"]
    back = json.loads(JSONEncoder().encode(model))
    problems = _lost(board, back, "")
    _check(model, "", problems)
    problems += [f"{path}: unknown unit {unit!r}" for path, unit in _units(board, "") if not _known(unit)]
    return [problem for problem in problems if not _gap(problem)]


def _gap(problem: str) -> bool:
    path = problem.split(":", 1)[0]
    return any(re.fullmatch(pattern, path) for pattern in SCHEMA_GAPS)


def _lost(ours: Any, back: Any, path: str) -> list[str]:
    """Keys and values of ours that the round trip dropped or changed (defaults it adds are fine)."""
    if isinstance(ours, dict) and isinstance(back, dict):
        problems = [f"{path}/{key}: dropped (not in the schema)" for key in ours if key not in back]
        for key in ours.keys() & back.keys():
            problems += _lost(ours[key], back[key], f"{path}/{key}")
        return problems
    if isinstance(ours, list) and isinstance(back, list) and len(ours) == len(back):
        return [
            problem
            for i, (a, b) in enumerate(zip(ours, back, strict=True))
            for problem in _lost(a, b, f"{path}[{i}]")
        ]
    if ours != back or type(ours) is not type(back):
        return [f"{path}: {ours!r} came back as {back!r}"]
    return []


def _check(model: object, path: str, problems: list[str]) -> None:
    """Each attribute of an SDK model against the type its class declares."""
    if isinstance(model, runtime.UnknownDataquery):
        return
    for name, hint in typing.get_type_hints(type(model)).items():
        if hasattr(model, name):
            problems.extend(_misfits(getattr(model, name), hint, f"{path}.{name}"))


def _misfits(value: Any, hint: Any, path: str) -> list[str]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:  # panel options and custom field config: decoded by the plugin
        problems: list[str] = []
        if type(value).__module__.startswith("grafana_foundation_sdk.models"):
            _check(value, path, problems)
        return problems
    if origin in (typing.Union, types.UnionType):
        tries = [_misfits(value, arm, path) for arm in args]
        # the arm of the value's own shape: its problems lie deeper than `path`
        return min(tries, key=lambda found: (any(p.startswith(f"{path}:") for p in found), len(found)))
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [
            problem for i, item in enumerate(value) for problem in _misfits(item, args[0], f"{path}[{i}]")
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [
            problem for key, item in value.items() for problem in _misfits(item, args[1], f"{path}.{key}")
        ]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint) or value in {member.value for member in hint}:
            return []
        return [f"{path}: {value!r} is not one of {[member.value for member in hint]}"]
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if number else [f"{path}: {value!r} is not a number"]
    if hint in (int, str, bool):
        fits = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
        return [] if fits else [f"{path}: {value!r} is not {hint.__name__}"]
    if isinstance(hint, type):
        if isinstance(value, dict) and hasattr(hint, "from_json"):
            value = hint.from_json(value)  # the SDK leaves panel transformations undecoded
        if not isinstance(value, hint):
            return [f"{path}: {type(value).__name__} is not {hint.__name__}"]
        problems = []
        _check(value, path, problems)
        return problems
    return []


def _units(node: Any, path: str) -> list[tuple[str, Any]]:
    """Every unit of the field configs and overrides, with its path."""
    found = []
    if isinstance(node, dict):
        if "unit" in node:
            found.append((f"{path}/unit", node["unit"]))
        if node.get("id") == "unit" and "value" in node:
            found.append((f"{path}/value", node["value"]))
        for key, value in node.items():
            found += _units(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _units(value, f"{path}[{i}]")
    return found


def _known(unit: Any) -> bool:
    return isinstance(unit, str) and (unit in UNITS or unit.startswith(CUSTOM_UNITS))


@pytest.mark.parametrize("name", BOARDS)
def test_dashboard_fits_grafanas_schema(name: str) -> None:
    assert schema_problems(BOARDS[name]) == []


def test_the_sdk_is_the_pinned_line() -> None:
    # its versions are `<build timestamp>!<grafana line>`, so an unpinned install takes the
    # Grafana 10.1 line (schema 36), built last: only the pin in pyproject.toml keeps "next"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [
        spec for spec in project["optional-dependencies"]["test"] if spec.startswith("grafana-foundation-sdk")
    ]
    assert pin == f"grafana-foundation-sdk=={version('grafana-foundation-sdk')}"
    assert Dashboard().schema_version >= 41


def _panel(board: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(panel for panel in board["panels"] if panel["type"] == kind)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(node: dict[str, Any]) -> None:
        node[key] = value

    return change


# (dashboard, what to change, where the check must point) for mistakes made while writing panels
MISTAKES = {
    "option key misspelt": (
        "line-overview.json",
        lambda b: _set("colourMode", "value")(_panel(b, "stat")["options"]),
        "/options/colourMode: dropped",
    ),
    "option in the field config": (
        "line-overview.json",
        lambda b: _set("legend", {"showLegend": True})(_panel(b, "timeseries")["fieldConfig"]["defaults"]),
        "/defaults/legend: dropped",
    ),
    "stat text mode": (
        "line-overview.json",
        lambda b: _set("textMode", "value_and_nam")(_panel(b, "stat")["options"]),
        ".options.text_mode: 'value_and_nam'",
    ),
    "legend display mode": (
        "line-overview.json",
        lambda b: _set("displayMode", "lst")(_panel(b, "timeseries")["options"]["legend"]),
        ".options.legend.display_mode: 'lst'",
    ),
    "bar chart stacking": (
        "line-overview.json",
        lambda b: _set("stacking", "nomal")(_panel(b, "barchart")["options"]),
        ".options.stacking: 'nomal'",
    ),
    "table cell height": (
        "line-overview.json",
        lambda b: _set("cellHeight", "small")(_panel(b, "table")["options"]),
        ".options.cell_height: 'small'",
    ),
    "threshold as text": (
        "connector-health.json",
        lambda b: _set("value", "1e4")(b["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]),
        ".thresholds.steps[1].value: '1e4' is not a number",
    ),
    "width as text": (
        "connector-health.json",
        lambda b: _set("w", "12")(b["panels"][0]["gridPos"]),
        ".grid_pos.w: '12' is not int",
    ),
    "variable refresh": (
        "line-overview.json",
        lambda b: _set("refresh", 3)(b["templating"]["list"][0]),
        ".templating.list_val[0].refresh: 3",
    ),
    "value mapping type": (
        "line-overview.json",
        lambda b: _set("type", "valu")(_panel(b, "state-timeline")["fieldConfig"]["defaults"]["mappings"][0]),
        "the SDK cannot read it: KeyError('valu')",
    ),
    "unit misspelt": (
        "twin-validation.json",
        lambda b: _set("unit", "percentunits")(_panel(b, "timeseries")["fieldConfig"]["defaults"]),
        "unknown unit 'percentunits'",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_check_finds_mistakes_in_panels(mistake: str) -> None:
    name, change, expected = MISTAKES[mistake]
    board = copy.deepcopy(BOARDS[name])
    change(board)
    problems = schema_problems(board)
    assert any(expected in problem for problem in problems), problems

"""One list of machine states, `twin.station.STATE_NAMES`: the dashboards, the CLI, the report and the
hardware files all follow it, in its order."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from fabbrica import calibration_commands
from fabbrica.grafana import line_overview
from simulations.hardware.config import SignalSpec
from twin.experiments.report import STATE_COLOURS
from twin.station import REPORTED_STATES, STATE_NAMES, STOPPED, StateName
from twinloop import demo_report

DASHBOARDS = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"


def _dashboard(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / name).read_text())


def _value_mappings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["options"]] if node.get("type") == "value" and "options" in node else []
        return found + [m for value in node.values() for m in _value_mappings(value)]
    if isinstance(node, list):
        return [m for value in node for m in _value_mappings(value)]
    return []


def test_the_reported_states_are_all_but_the_operator_stop() -> None:
    assert get_args(StateName) == STATE_NAMES
    assert STATE_NAMES[STOPPED] == "stopped"
    assert STATE_NAMES[:STOPPED] == ("working", "blocked", "starved", "down", "setup")  # codes 0-4 kept
    assert tuple(name for name in STATE_NAMES if name != "stopped") == REPORTED_STATES
    assert STATE_NAMES[STOPPED + 1 :] == ("waiting_repair", "planned_stop", "off", "maintenance")  # appended


def test_the_line_overview_maps_every_state_code_to_its_name() -> None:
    assert [name for _, name, _ in line_overview.STATES] == list(STATE_NAMES)
    # the PLC counters TimeWorking ... TimeWaitingRepair, in CamelCase
    assert [re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in line_overview.COUNTERS] == list(
        REPORTED_STATES
    )
    # the value mappings keyed by state code (the flow panel maps `reworked` too)
    mappings = [
        options
        for options in _value_mappings(_dashboard("line-overview.json"))
        if all(code.isdigit() for code in options)
    ]
    assert mappings, "the state timeline lost its value mapping"
    for options in mappings:
        assert {int(code): entry["text"] for code, entry in options.items()} == dict(enumerate(STATE_NAMES))


def test_the_validation_dashboard_offers_the_reported_states() -> None:
    variables = {v["name"]: v for v in _dashboard("twin-validation.json")["templating"]["list"]}
    assert [option["value"] for option in variables["state"]["options"]] == list(REPORTED_STATES)


def test_the_validation_table_has_a_column_per_reported_state(capsys: pytest.CaptureFixture[str]) -> None:
    shares = {state: 0.2 for state in REPORTED_STATES}
    result = {
        "throughput": {"observed": 10.0, "twin_mean": 10.0, "twin_ci95": 0.5, "rel_error": 0.0},
        "stations": {"lathe": {"observed": shares, "twin": shares}},
        "verdict": "valid",
        "tolerance": 0.1,
    }
    calibration_commands._print_validation(result)
    header = next(line for line in capsys.readouterr().out.splitlines() if "station" in line)
    columns = [cell.strip() for cell in header.strip("┃│ ").replace("┃", "│").split("│")]
    assert columns == ["station", *REPORTED_STATES]
    # a state neither the line nor the twin spent time in gets no column
    shares = {state: 0.2 if state != "planned_stop" else 0.0 for state in REPORTED_STATES}
    result["stations"] = {"lathe": {"observed": shares, "twin": shares}}
    calibration_commands._print_validation(result)
    header = next(line for line in capsys.readouterr().out.splitlines() if "station" in line)
    assert "planned_stop" not in header and "maintenance" in header


def test_the_demo_report_and_its_colours_follow_the_list() -> None:
    assert demo_report.REPORTED_STATES is REPORTED_STATES
    assert set(REPORTED_STATES) <= set(STATE_COLOURS)


def test_a_hardware_file_names_the_states_of_the_list() -> None:
    spec = SignalSpec(name="power", levels={name: float(code) for code, name in enumerate(STATE_NAMES)})
    assert spec.level_table() == [float(code) for code in range(len(STATE_NAMES))]
    with pytest.raises(ValidationError, match="idle"):
        SignalSpec(name="power", levels={"idle": 1.0})

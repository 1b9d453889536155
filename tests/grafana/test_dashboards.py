"""The files under grafana/: generated from code, valid for the pinned Grafana, self-consistent."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from fabbrica.cli import app
from fabbrica.grafana.model import DATASOURCE_UID, GRAFANA_VERSION, PANEL_TYPES, SCHEMA_VERSION
from fabbrica.grafana.provisioning import DASHBOARD_PATH, DASHBOARDS, check, files

from ..connectors.conftest import ROOT

GRAFANA = ROOT / "grafana"
BOARDS = {name: json.loads((GRAFANA / "dashboards" / name).read_text()) for name in DASHBOARDS}
# Angular panels, removed from Grafana 12 on (and their old plugin ids)
REMOVED = {
    "graph",
    "singlestat",
    "table-old",
    "grafana-singlestat-panel",
    "grafana-piechart-panel",
    "grafana-worldmap-panel",
    "grafana-polystat-panel",
    "natel-discrete-panel",
    "flant-statusmap-panel",
}
runner = CliRunner()


def test_checked_in_files_equal_the_generated_ones() -> None:
    assert check(GRAFANA) == [], "run `fabbrica grafana generate`"
    result = runner.invoke(app, ["grafana", "generate", "--check", "--out", str(GRAFANA)])
    assert result.exit_code == 0, result.output


def test_generate_writes_every_file(tmp_path) -> None:
    result = runner.invoke(app, ["grafana", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert check(tmp_path) == []
    (tmp_path / "dashboards" / "line-overview.json").write_text("{}")
    (tmp_path / "dashboards" / "stray.json").write_text("{}")
    result = runner.invoke(app, ["grafana", "generate", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "line-overview.json" in result.stderr and "stray.json" in result.stderr


def _panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


@pytest.mark.parametrize("name", BOARDS)
def test_dashboard_json_is_valid_for_the_pinned_grafana(name: str) -> None:
    board = BOARDS[name]
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert "id" not in board and re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
    ids = [panel["id"] for panel in _panels(board)]
    assert len(ids) == len(set(ids))
    for panel in _panels(board):
        assert panel["type"] in PANEL_TYPES and panel["type"] not in REMOVED, panel["type"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= 24 and grid["h"] >= 1
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["rawQuery"] is True and target["query"].startswith("SELECT ")
            assert target["resultFormat"] in ("time_series", "table")
            assert "$timeFilter" in target["query"], target["query"]
    overlaps = [
        (a["title"], b["title"])
        for i, a in enumerate(board["panels"])
        for b in board["panels"][i + 1 :]
        if _overlap(a["gridPos"], b["gridPos"])
    ]
    assert not overlaps


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize("name", BOARDS)
def test_every_variable_used_is_defined(name: str) -> None:
    board = BOARDS[name]
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    builtin = {"timeFilter", "__interval", "__interval_ms", "col", "__field", "__data"}
    texts = [target["query"] for panel in _panels(board) for target in panel.get("targets", [])]
    texts += [panel["title"] for panel in _panels(board)]
    texts += [variable.get("query", "") for variable in variables.values() if variable["type"] == "query"]
    texts += [annotation.get("query", "") for annotation in board["annotations"]["list"]]
    used = {name for text in texts for name in re.findall(r"\$(\w+)", text) if not name.startswith("tag_")}
    assert used - builtin <= set(variables), used - builtin - set(variables)
    for panel in _panels(board):
        if "repeat" in panel:
            assert variables[panel["repeat"]]["multi"], panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["query"].startswith("SHOW TAG VALUES FROM")


def test_provisioning_files_point_at_the_dashboards_and_the_environment() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["url"] == "${INFLUX_URL}" and source["jsonData"]["dbName"] == "${INFLUX_DATABASE}"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/fabbrica.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == DASHBOARD_PATH
    assert set(files()) == {
        "provisioning/datasources/influxdb.yaml",
        "provisioning/dashboards/fabbrica.yaml",
        *(f"dashboards/{name}" for name in DASHBOARDS),
    }


def test_compose_runs_the_grafana_the_dashboards_are_made_for() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["grafana"]["image"].endswith(f":{GRAFANA_VERSION}")

"""The dashboards follow the one state list (twin.station) and the one KPI catalogue (twin.kpi_catalogue):
every state has a colour of its own, every catalogue unit a Grafana unit, and the twin's plant-time
and energy KPIs are shown in their units."""

from __future__ import annotations

import json

from fabbrica.grafana import experiments, line_overview, validation
from fabbrica.grafana.model import KPI_UNITS, UNITLESS, kpi_unit
from twin.kpi_catalogue import KPIS, kpi
from twin.station import REPORTED_STATES, STATE_NAMES

from .test_dashboards import BOARDS


def test_every_state_has_a_colour_of_its_own() -> None:
    assert list(line_overview.STATE_COLOURS) == list(STATE_NAMES)
    assert len(set(line_overview.STATE_COLOURS.values())) == len(STATE_NAMES)
    # the PLC counter of each reported state, as the OEE and the shares read it
    assert line_overview.COUNTER["planned_stop"] == "TimePlannedStop"
    assert list(line_overview.COUNTER) == list(REPORTED_STATES)


def test_the_state_panels_share_one_mapping_and_colour_every_reported_state() -> None:
    text = json.dumps(BOARDS["line-overview.json"])
    mapping = json.dumps(line_overview.STATE_MAPPINGS)
    assert text.count(mapping) == 2  # the state timeline and the stations' state now
    board = line_overview.dashboard()
    (shares,) = [panel for panel in board.panels if panel.title == "Time shares per station"]
    coloured = {override["matcher"]["options"] for override in shares.overrides}
    assert coloured == set(REPORTED_STATES)


def test_every_catalogue_unit_has_a_grafana_unit() -> None:
    assert {declared.unit for declared in KPIS} <= set(KPI_UNITS) | set(UNITLESS)


def test_the_twin_panels_show_the_plant_kpis_in_their_units() -> None:
    runs = dict(validation.TWIN_RUN_COLUMNS)
    for name in ("planned_share", "throughput_per_planned_hour", "energy_per_good_part_kwh"):
        assert name in runs, name
    assert kpi_unit(kpi("energy_per_good_part_kwh")) == "suffix: kWh/part"
    assert kpi_unit(kpi("planned_share")) == "percentunit"
    stations = dict(validation.TWIN_STATION_COLUMNS)
    assert {"planned_stop", "maintenance", "waiting_repair", "off", "energy_per_good_part_kwh"} <= set(
        stations
    )
    board = validation.dashboard().to_json()
    units = {
        override["matcher"]["options"]: {p["id"]: p["value"] for p in override["properties"]}.get("unit")
        for panel in board["panels"]
        for override in panel.get("fieldConfig", {}).get("overrides", [])
    }
    assert units[runs["energy_per_good_part_kwh"]] == "suffix: kWh/part"
    assert units[runs["throughput_per_planned_hour"]] == "suffix: parts/h"
    assert units[stations["energy_kwh"]] == "kwatth"
    # the experiments' KPI matrix: a line KPI by name, a station KPI by its experiment name
    overrides = {o["matcher"]["options"]: o["properties"][0]["value"] for o in experiments.kpi_units()}
    assert overrides["energy_per_good_part_kwh"] == "suffix: kWh/part"
    assert overrides["planned_share"] == "percentunit"
    assert overrides[r"^stations\.[^.]+\.energy_per_good_part_kwh$"] == "suffix: kWh/part"

"""Every panel's InfluxQL, with Grafana's variables filled in, against InfluxDB 1.x holding a
simulated line run, its connector's health, a twin run, a validation and an experiment.

Each query must run without error and return the columns its panel draws, with values, in
series carrying the tags it groups by: one per station, scenario or connector selected.
"""

from __future__ import annotations

import math
import re

import pytest

from fabbrica.grafana.model import Dashboard, Panel, Query
from fabbrica.grafana.provisioning import DASHBOARDS

from .conftest import CONNECTOR, Dataset
from .panels import Resolver, expand, rows

BOARDS = {name: build() for name, build in DASHBOARDS.items()}
CASES = [
    pytest.param(name, panel, query, id=f"{name.removesuffix('.json')}:{panel.title}:{index}")
    for name, board in BOARDS.items()
    for panel in board.panels
    for index, query in enumerate(panel.queries)
]


@pytest.fixture(scope="module")
def resolver(dataset: Dataset) -> Resolver:
    return Resolver(dataset.url, dataset.database, dataset.start_ms, dataset.end_ms)


@pytest.mark.parametrize("name", BOARDS)
def test_variables_find_the_recorded_values(name: str, resolver: Resolver, dataset: Dataset) -> None:
    values = resolver.variable_values(BOARDS[name])
    expected = {
        "line": [dataset.line],
        "station": sorted(dataset.stations),
        "exit": ["test"],
        "experiment": [dataset.experiment],
        "scenario": sorted(dataset.scenarios),
        "kpi": sorted(dataset.kpis),
        "rank_kpi": ["throughput_per_hour"],
        "connector": [CONNECTOR],
        "sensor": ["ambient", "energy", "vibration"],
    }
    for variable, found in values.items():
        if variable in expected:
            assert found == expected[variable], variable


@pytest.mark.parametrize(("name", "panel", "query"), CASES)
def test_panel_query_returns_what_the_panel_draws(
    name: str, panel: Panel, query: Query, resolver: Resolver
) -> None:
    board: Dashboard = BOARDS[name]
    values = resolver.variable_values(board)
    for chosen in expand(query, panel.repeat, values):
        text = resolver.fill(query.text, chosen)
        assert not [name for name in re.findall(r"\$(\w+)", text) if not name.startswith("tag_")], text
        series = resolver.run(text)
        assert series, f"no data: {text}"
        for item in series:
            missing = [
                column for column in query.fields if resolver.fill(column, chosen) not in item["columns"]
            ]
            assert not missing, f"{missing} not in {item['columns']}: {text}"
            assert set(query.group) <= set(item.get("tags") or {}), f"tags {item.get('tags')}: {text}"
        found = list(rows(series))
        for column in query.fields:
            column = resolver.fill(column, chosen)
            present = [row[column] for row in found if row.get(column) is not None]
            assert present, f"{column}: only nulls: {text}"
        for tag in query.group:
            got = {row[tag] for row in found}
            if tag in chosen and len(chosen[tag]) > 1:
                assert set(chosen[tag]) <= got <= {*chosen[tag], ""}, f"{tag}: {sorted(got)}"
            else:
                assert got, tag


def _by(series: list[dict], tag: str) -> dict[str, dict]:
    return {row[tag]: row for row in rows(series)}


def test_oee_matches_the_counters(resolver: Resolver, dataset: Dataset) -> None:
    """The OEE table's InfluxQL arithmetic gives the OEE of docs/kpis.md against planned busy time,
    station by station; a counter the PLCs do not publish counts as 0 s."""
    from fabbrica.grafana.line_overview import COUNTER, OEE_SQL

    values = {"line": [dataset.line], "station": dataset.stations}
    oee = _by(resolver.run(resolver.fill(OEE_SQL, values)), "station")
    assert set(oee) == set(dataset.stations)
    for station in dataset.stations:
        spans = _by(
            resolver.run(
                resolver.fill(
                    "SELECT "
                    + ", ".join(f'spread("{counter}") AS "{state}"' for state, counter in COUNTER.items())
                    + ', spread("PartsProduced") AS g, spread("PartsScrapped") AS x, '
                    'last("IdealCycleTime") AS i FROM "machine" '
                    f'WHERE "station" = \'{station}\' AND $timeFilter GROUP BY "station"',
                    values,
                )
            ),
            "station",
        )[station]
        t = {state: spans[state] or 0.0 for state in COUNTER}
        total = sum(t.values())
        planned = total - t["planned_stop"] - t["maintenance"]
        lost = t["down"] + t["waiting_repair"] + t["setup"]
        availability = 1 - lost / planned
        performance = spans["i"] * (spans["g"] + spans["x"]) / (planned - lost)
        quality = spans["g"] / (spans["g"] + spans["x"])
        row = oee[station]
        assert math.isclose(row["planned"], planned / total, rel_tol=1e-9)
        assert math.isclose(row["availability"], availability, rel_tol=1e-9)
        assert math.isclose(row["performance"], performance, rel_tol=1e-9)
        assert math.isclose(row["quality"], quality, rel_tol=1e-9)
        assert math.isclose(row["oee"], availability * performance * quality, rel_tol=1e-9)
        assert 0 < row["availability"] <= 1 and 0 < row["oee"] <= 1.2


def test_energy_per_good_part_joins_the_meters_and_the_counters(resolver: Resolver, dataset: Dataset) -> None:
    """The two answers of each energy panel, joined and divided as its transformations do: per
    station its meter's kWh over its good parts; the line's kWh is the stations' sum, over the
    exit station's good parts."""
    from fabbrica.grafana import line_overview as board

    values = {"line": [dataset.line], "station": dataset.stations, "exit": ["test"]}

    def answer(sql: str) -> list[dict]:
        return list(rows(resolver.run(resolver.fill(sql, values))))

    energy = {row["station"]: row["energy"] for row in answer(board.STATION_ENERGY_SQL)}
    good = {row["station"]: row["good"] for row in answer(board.STATION_GOOD_SQL)}
    assert set(energy) == set(good) == set(dataset.stations)
    per_part = {station: energy[station] / good[station] for station in dataset.stations if good[station]}
    assert per_part and all(0 < kwh < 10 for kwh in per_part.values()), per_part
    ((line_energy,),) = [[row["energy"]] for row in answer(board.LINE_ENERGY_SQL)]
    ((line_good,),) = [[row["good"]] for row in answer(board.LINE_GOOD_SQL)]
    assert math.isclose(line_energy, sum(energy.values()), rel_tol=1e-9)
    assert line_good == good["test"] > 0


def test_wip_is_the_sum_of_station_occupancy(resolver: Resolver, dataset: Dataset) -> None:
    from fabbrica.grafana.line_overview import OCCUPANCY_SQL, WIP_SQL

    values = {"line": [dataset.line]}
    (wip,) = [row["wip"] for row in rows(resolver.run(resolver.fill(WIP_SQL, values)))]
    latest = {}
    for row in rows(resolver.run(resolver.fill(OCCUPANCY_SQL, values))):
        if row["occupancy"] is not None:
            latest[row["station"]] = row["occupancy"]  # rows come oldest first
    assert set(latest) == set(dataset.stations)
    assert wip == sum(latest.values())
    assert 0 <= wip <= 4 + 2 + 6 + 3 + 1 + 1 + 1 + 2 + 1  # buffers plus machines of the demonstrator


def test_experiment_intervals_hold_the_mean(resolver: Resolver, dataset: Dataset) -> None:
    series = resolver.run(
        resolver.fill(
            'SELECT "mean", "lower", "upper", "ci95", "replications" FROM "experiment_kpi" '
            'WHERE "experiment" = \'' + dataset.experiment + '\' AND $timeFilter GROUP BY "scenario", "kpi"',
            {},
        )
    )
    found = list(rows(series))
    assert {(row["scenario"], row["kpi"]) for row in found} == {
        (scenario, kpi) for scenario in dataset.scenarios for kpi in dataset.kpis
    }
    for row in found:
        assert row["replications"] == 3
        assert math.isclose(row["lower"], row["mean"] - row["ci95"]) and math.isclose(
            row["upper"], row["mean"] + row["ci95"]
        )


def test_the_flow_table_follows_the_line(resolver: Resolver, dataset: Dataset) -> None:
    """The flow panel's rows, grouped as its transformation does: on the demonstrator (a chain)
    each station passes every good part to the next one and the last to the exit, none reworked,
    as many as the station made (the truth file's count)."""
    from collections import Counter

    from fabbrica.grafana.line_overview import FLOW_SQL

    values = {"line": [dataset.line], "station": dataset.stations}
    moves = Counter(
        (row["station"], row["to"], row["reworked"])
        for row in rows(resolver.run(resolver.fill(FLOW_SQL, values)))
    )
    after = [*dataset.stations[1:], "exit"]
    assert moves == Counter(
        {
            (station, to, False): dataset.truth["stations"][station]["parts_produced"]
            for station, to in zip(dataset.stations, after, strict=True)
        }
    )

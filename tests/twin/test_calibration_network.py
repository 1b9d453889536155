"""Calibration of a line that is a network: rework probability and routes from the part events.

Records come from the twin itself (`Recorder`, whose `part_routed` names where each part came
from and went, as the PLCs' part events do) or are written by hand for the cases a twin cannot
make (a product routed two ways). The rework interval is checked against scipy's Wilson interval.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import scipy.stats

from tests.hardware.conftest import NETWORK_LINE
from twin.calibration.estimate import Limits, calibrate_line, wilson_interval
from twin.calibration.records import Recorder, StationRecord
from twin.calibration.routing import estimate_routes, prior_route
from twin.calibration.validate import validate
from twin.engine import LineModel
from twin.line import line_from_dict

HOURS = 12.0


def record(line_data: dict[str, Any], hours: float, seed: int) -> tuple[dict[str, StationRecord], float]:
    line = line_from_dict(line_data)
    recorder = Recorder([s.name for s in line.stations])
    model = LineModel(line, seed, observer=recorder)
    model.env.run(until=hours * 3600)
    return recorder.records, hours * 3600


@pytest.fixture(scope="module")
def recorded() -> tuple[dict[str, StationRecord], float]:
    return record(NETWORK_LINE, HOURS, seed=3)


@pytest.mark.parametrize(("k", "n"), [(0, 50), (3, 50), (221, 1064), (50, 50), (7, 12)])
def test_the_wilson_interval_is_scipys(k: int, n: int) -> None:
    expected = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_the_rework_probability_is_estimated_with_its_interval(
    recorded: tuple[dict[str, StationRecord], float],
) -> None:
    records, window = recorded
    prior = copy.deepcopy(NETWORK_LINE)
    prior["stations"][5]["rework"] = {"probability": 0.5, "to": "wash"}
    line, results = calibrate_line(prior, records, window)
    test = results[5]
    good = sum(1 for scrapped in records["test"].scrapped if not scrapped)
    assert test.rework_parts == good > 2000 and test.reworked == sum(records["test"].reworked)
    assert test.rework_to == "wash"
    assert test.rework_probability == pytest.approx(test.reworked / good)
    low, high = test.rework_ci95  # type: ignore[misc]
    assert low < 0.2 < high and high - low < 0.04
    assert line["stations"][5]["rework"] == {"probability": test.rework_probability, "to": "wash"}
    # the stations that send nothing back say so only through their (empty) count
    assert all(result.rework_probability is None for result in results[:5])
    assert "rework" not in line["stations"][4]
    # the scrap estimate has its interval too
    cut = results[0]
    assert cut.scrap_ci95 is not None and cut.scrap_ci95[0] < 0.02 < cut.scrap_ci95[1]


def test_routes_and_shares_from_the_events(recorded: tuple[dict[str, StationRecord], float]) -> None:
    records, window = recorded
    routes = estimate_routes(records)
    assert set(routes) == {"A", "B", "C"}
    assert routes["A"].route == ["cut", "lathe", "assembly", "wash", "test"]
    assert routes["B"].route == ["cut", "assembly", "wash", "test"]
    assert routes["C"].route == ["cover", "assembly"]  # a component ends at the assembly
    assert routes["A"].shares["cut"] == {"lathe": 1.0} and routes["B"].shares["cut"] == {"assembly": 1.0}
    assert routes["A"].shares["test"] == {"exit": 1.0}  # parts sent back for rework are not routing
    assert routes["A"].entries.keys() == {"cut"} and routes["C"].entries.keys() == {"cover"}
    # as the line says: nothing is written, and each route is reported where the product enters
    line, results = calibrate_line(NETWORK_LINE, records, window)
    assert line["routes"] == NETWORK_LINE["routes"]
    assert set(results[0].routes) == {"A", "B"} and set(results[2].routes) == {"C"}
    assert not any(route.written for result in results for route in result.routes.values())
    for product in ("A", "B", "C"):
        assert prior_route(NETWORK_LINE, product) == routes[product].route


def test_a_route_that_differs_from_the_prior_is_written(
    recorded: tuple[dict[str, StationRecord], float],
) -> None:
    records, window = recorded
    prior = copy.deepcopy(NETWORK_LINE)
    prior["routes"]["B"] = ["cut", "lathe", "assembly", "wash", "test"]  # the prior says B is turned too
    line, results = calibrate_line(prior, records, window)
    assert line["routes"]["B"] == ["cut", "assembly", "wash", "test"]
    assert line["routes"]["A"] == prior["routes"]["A"]
    assert results[0].routes["B"].written and not results[0].routes["A"].written
    line_from_dict(line)


def test_shares_that_are_not_one_way_are_reported_not_written() -> None:
    """A product that a real line sends two ways after `cut`: the twin cannot, so only the shares."""
    cut = StationRecord("cut", scrapped=[False] * 10, products=["A"] * 10)
    cut.came_from = ["release"] * 10
    cut.goes_to = ["lathe"] * 7 + ["assembly"] * 3
    cut.reworked = [False] * 10
    routes = estimate_routes({"cut": cut})
    assert routes["A"].route is None and routes["A"].shares["cut"] == {"lathe": 0.7, "assembly": 0.3}
    assert "from cut (coming from release) its parts went to lathe 7, assembly 3" in routes["A"].reason  # type: ignore[operator]
    prior = {"name": "L", "products": [{"name": "A"}], "stations": [{"name": "cut", "cycle_time": 5}]}
    line, results = calibrate_line(prior, {"cut": cut}, 100.0, Limits(route_parts=5))
    assert "routes" not in line
    assert any("A has no one route" in warning for warning in results[0].warnings)


def test_validation_checks_the_throughput_of_every_station_of_a_network(
    recorded: tuple[dict[str, StationRecord], float],
) -> None:
    """The recorded network validated against itself: every station's good parts per hour are checked
    (and within the twin's interval), the line's throughput counts the parts that left (`to: exit`)."""
    records, window = recorded
    line = line_from_dict(NETWORK_LINE)
    result = validate(line, records, window, replications=5)
    exits = sum(record.goes_to.count("exit") for record in records.values())
    assert result["throughput"]["observed"] == pytest.approx(exits / window * 3600)
    stations = [s.name for s in line.stations]
    assert {f"{name}.throughput" for name in stations} <= set(result["checks"])
    for name in stations:
        good = sum(1 for scrapped in records[name].scrapped if not scrapped)
        assert result["stations"][name]["throughput"]["observed"] == pytest.approx(good / window * 3600)
    assert result["verdict"] == "valid", {k: c for k, c in result["checks"].items() if not c["ok"]}

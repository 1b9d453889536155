"""Dotted paths into a line's data: named stations, nested fields, created mappings, clear errors."""

from __future__ import annotations

import pytest

from twin.experiments.paths import PathError, get_path, named_location, set_path


def line_data() -> dict:
    return {
        "name": "l",
        "products": [{"name": "A", "mix": 1}],
        "stations": [
            {"name": "mill", "cycle_time": 60, "failures": {"mtbf": "2h", "mttr": "10min"}},
            {"name": "paint", "cycle_time": 30, "buffer": 2},
        ],
    }


def test_station_fields_by_name() -> None:
    data = line_data()
    set_path(data, "stations.paint.buffer", 8)
    set_path(data, "stations.mill.failures.mttr", "5min")
    set_path(data, "products.A.mix", 2)
    set_path(data, "horizon", "4h")
    assert data["stations"][1]["buffer"] == 8
    assert data["stations"][0]["failures"] == {"mtbf": "2h", "mttr": "5min"}
    assert data["products"][0]["mix"] == 2
    assert data["horizon"] == "4h"
    assert get_path(data, "stations.mill.failures.mttr") == "5min"
    assert get_path(data, "stations.nope.buffer") is None


def test_missing_mapping_is_created() -> None:
    data = line_data()
    set_path(data, "stations.paint.failures.mttr", "3min")
    assert data["stations"][1]["failures"] == {"mttr": "3min"}


def test_values_are_copied() -> None:
    data = line_data()
    level = {"dist": "exponential", "mean": 40}
    set_path(data, "stations.paint.cycle_time", level)
    level["mean"] = 1
    assert data["stations"][1]["cycle_time"]["mean"] == 40


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("stations.paitn.buffer", "unknown station 'paitn' in stations (known: mill, paint)"),
        ("stations.mill", "names a whole station"),
        ("stations.paint.buffer.size", "stations.paint.buffer is a value, it has no field 'size'"),
        ("stations..buffer", "not a dotted path"),
    ],
)
def test_errors(path: str, message: str) -> None:
    with pytest.raises(PathError, match=message.replace("(", r"\(").replace(")", r"\)")):
        set_path(line_data(), path, 1)


def test_named_location() -> None:
    data = line_data()
    assert named_location(data, "stations[1].buffer") == "stations.paint.buffer"
    assert named_location(data, "stations[0].failures.mttr") == "stations.mill.failures.mttr"
    assert named_location(data, "horizon") == "horizon"
    assert named_location(data, "stations[7].buffer") == "stations[7].buffer"

"""Dotted paths into a line's data: named stations, nested fields, created mappings, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT
from twin.experiments import Experiment, ExperimentError
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


# -- the keys of lines as networks as factors (docs/networks.md) ---------------------------------
ASSEMBLY = ROOT / "simulations" / "lines" / "assembly.yaml"
ROUTE_B = ["mill", "lathe", "wash", "assembly", "screw", "test", "pack"]


def _assembly_experiment(factors: dict[str, Any], **more: Any) -> Experiment:
    spec = {
        "name": "n",
        "line": str(ASSEMBLY),
        "factors": factors,
        "replications": 2,
        "horizon": "2h",
        **more,
    }
    return Experiment.from_dict({**spec, "kpis": ["throughput_per_hour"]}, ROOT, "exp.yaml")


def test_network_keys_are_factors() -> None:
    experiment = _assembly_experiment(
        {
            "stations.test.rework.probability": [0.02, 0.2],
            "stations.pack.transport.capacity": [1, 3],
            "stations.pack.transport.time.mean": ["75s", "2min"],
            "stations.press.release.interarrival.mean": [50, 70],
            "routes.B": [ROUTE_B[:2] + ROUTE_B[3:], ROUTE_B],
        },
        design={"type": "latin_hypercube", "samples": 2, "seed": 1},
        overrides={"stations.press.release": {"interarrival": {"dist": "exponential", "mean": 60}}},
    )
    for scenario in experiment.scenarios:
        line = experiment.lines[scenario.id]
        factors = scenario.factors
        test, pack, press = line.station("test"), line.station("pack"), line.station("press")
        assert test.rework is not None and test.rework.to == "screw"
        assert test.rework.probability == factors["stations.test.rework.probability"]
        assert (
            pack.transport is not None
            and pack.transport.capacity == factors["stations.pack.transport.capacity"]
        )
        assert pack.transport.time.mean in (75, 120)
        assert press.release.interarrival.mean == factors["stations.press.release.interarrival.mean"]  # type: ignore[union-attr]
        assert line.routes is not None and line.routes["B"] == factors["routes.B"]


@pytest.mark.parametrize(
    ("factors", "message"),
    [
        (
            {"stations.test.rework.to": ["screw", "assembly"]},
            r"factors\.stations\.test\.rework\.to: 'assembly' is an assembly: a part cannot go back into it"
            r" \(scenario s2\)",
        ),
        (
            {"routes.B": [ROUTE_B, ["mill", "lathe", "wsh"]]},
            r"factors\.routes\.B: routes\.B\[2\]: unknown station 'wsh'",
        ),
        (
            {"stations.assembly.inputs": [["wash", "deburr"], ["wash", "debur"]]},
            r"factors\.stations\.assembly\.inputs: stations\.assembly\.inputs\[1\]: unknown station 'debur'",
        ),
        (
            {"stations.lathe.rework.probability": [0.1]},
            r"factors: stations\.lathe\.rework\.to: required field",
        ),
        (
            {"stations.pack.transport.capacity": [0, 1]},
            r"factors\.stations\.pack\.transport\.capacity: must be >= 1",
        ),
    ],
)
def test_a_bad_network_factor_names_the_factor(factors: dict[str, Any], message: str) -> None:
    with pytest.raises(ExperimentError, match=rf"^exp\.yaml: {message}"):
        _assembly_experiment(factors)


def test_network_keys_are_optimisation_variables() -> None:
    from twin.optimisation import Optimisation, OptimisationError

    spec = {
        "name": "agv",
        "line": str(ASSEMBLY),
        "replications": 2,
        "variables": {
            "stations.pack.transport.capacity": {"int": [1, 3]},
            "stations.test.rework.probability": {"float": [0.02, 0.2]},
        },
        "objectives": [{"kpi": "throughput_per_hour", "goal": "maximize"}],
        "budget": {"evaluations": 4},
    }
    optimisation = Optimisation.from_dict(spec, ROOT, "opt.yaml")
    lines = optimisation.experiment.lines
    assert lines["highest"].station("pack").transport.capacity == 3  # type: ignore[union-attr]
    assert lines["lowest"].station("test").rework.probability == 0.02  # type: ignore[union-attr]
    spec["variables"] = {"stations.pack.transport.capacity": {"int": [0, 2]}}
    with pytest.raises(
        OptimisationError, match=r"^opt\.yaml: variables\.stations\.pack\.transport\.capacity: must be >= 1"
    ):
        Optimisation.from_dict(spec, ROOT, "opt.yaml")

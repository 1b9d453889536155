"""Optimisation files: one line naming file and field for each mistake; unmeetable constraints refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.twin.optimisation.conftest import BUFFERS, WriteSpec
from twin.optimisation import Optimisation, OptimisationError


def _with(change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """BUFFERS with `change` (variables are added to the two buffers) and without `drop`."""
    data = copy.deepcopy(BUFFERS)
    for key in drop:
        data.pop(key)
    for key, value in change.items():
        data[key] = {**data[key], **value} if key == "variables" else value
    return data


BAD: list[tuple[dict[str, Any], tuple[str, ...], str]] = [
    ({"variables": {"stations.s2.buffer": {"int": [4, 0]}}}, (), "variables.stations.s2.buffer.int: "),
    ({"variables": {"stations.s2.buffer": {"range": [0, 4]}}}, (), "variables.stations.s2.buffer: must be"),
    ({"variables": {"stations.s2.buffer": [0, 4]}}, (), "variables.stations.s2.buffer: must be"),
    (
        {"variables": {"stations.s2.buffer": {"int": [-1, 4]}}},
        (),
        "variables.stations.s2.buffer: must be >= 0",
    ),
    (
        {"variables": {"stations.s9.buffer": {"int": [0, 4]}}},
        (),
        "variables.stations.s9.buffer: unknown station",
    ),
    ({"variables": {"stations..buffer": {"int": [0, 4]}}}, (), "variables: not a dotted path"),
    ({"constraints": [{"sum": ["stations.s2.buffer"]}]}, (), "constraints[0]: give max, min or both"),
    (
        {"constraints": [{"sum": ["stations.s1.buffer"], "max": 3}]},
        (),
        "constraints[0].sum[0]: stations.s1.buffer is not a variable",
    ),
    (
        {"constraints": [{"sum": ["stations.s2.buffer"], "weights": [1, 2], "max": 3}]},
        (),
        "constraints[0].weights: needs one weight per path",
    ),
    ({"objectives": [{"kpi": "throughput", "goal": "maximize"}]}, (), "objectives[0].kpi: unknown KPI"),
    (
        {"constraints": [{"sum": ["stations.s2.buffer"], "kpi": "wip_mean", "max": 3}]},
        (),
        "constraints[0]: give exactly one of sum (variables) or kpi",
    ),
    ({"constraints": [{"kpi": "wip", "max": 3}]}, (), "constraints[0].kpi: unknown KPI"),
    ({"objectives": [{"kpi": "throughput_per_hour", "goal": "up"}]}, (), "objectives[0].goal: must be"),
    ({"objectives": []}, (), "objectives: must have at least 1"),
    (
        {"objectives": [{"terms": {"throughput_per_hour": 1}, "goal": "maximize"}]},
        (),
        "objectives[0].name: a weighted objective needs a name",
    ),
    ({"budget": {}}, (), "budget: a tpe search needs evaluations or wall_time"),
    ({"budget": {"evaluations": 0}}, (), "budget.evaluations: must be >= 1"),
    ({"search": {"method": "annealing"}}, (), "search.method: must be"),
    ({"selection": {"delta": 0, "alpha": 0.05}}, (), "selection.delta: must be > 0"),
    ({"selection": {"delta": 1, "alpha": 1.5}}, (), "selection.alpha: must be < 1"),
    ({"replications": 0}, (), "replications: must be >= 1"),
    ({"warmup": "8h"}, (), "warmup: must be shorter than horizon"),
    ({"warmup": "auto"}, (), "warmup: auto warm-up is for experiments"),
    ({"horizon": "-1h"}, (), "horizon: "),
    ({"overrides": {"stations.s2.cycle_time": -5}}, (), "overrides.stations.s2.cycle_time: "),
    ({"colour": "red"}, (), "colour: unknown key"),
    ({}, ("variables",), "variables: required field missing"),
    (
        {"search": {"method": "exhaustive"}, "variables": {"release.interarrival.mean": {"float": [50, 80]}}},
        (),
        "variables.release.interarrival.mean: an exhaustive search needs a step",
    ),
]


@pytest.mark.parametrize(("change", "drop", "expected"), BAD)
def test_every_mistake_is_one_line_naming_file_and_field(
    write_spec: WriteSpec, change: dict[str, Any], drop: tuple[str, ...], expected: str
) -> None:
    path = write_spec(_with(change, drop))
    with pytest.raises(OptimisationError) as caught:
        Optimisation.from_yaml(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_a_line_file_that_is_missing_is_named(write_spec: WriteSpec, tmp_path: Path) -> None:
    path = write_spec(_with({"line": "nowhere.yaml"}))
    with pytest.raises(OptimisationError, match=r"line: file not found"):
        Optimisation.from_yaml(path)


@pytest.mark.parametrize(
    ("constraints", "expected"),
    [
        ([{"sum": ["stations.s2.buffer", "stations.s3.buffer"], "max": -1}], "constraints[0]: no design"),
        (
            [
                {"sum": ["stations.s2.buffer", "stations.s3.buffer"], "min": 6},
                {"sum": ["stations.s2.buffer"], "weights": [1], "max": 1},
            ],
            "constraints: no design of the variables' ranges meets them all together",
        ),
        # 3 x capacity in {1, 2} cannot be 5: the choice is modelled exactly, not as a range
        (
            [{"sum": ["stations.s1.capacity"], "weights": [3], "min": 4, "max": 5}],
            "constraints[0]: no design",
        ),
    ],
)
def test_constraints_no_design_meets_are_refused(
    write_spec: WriteSpec, constraints: list[dict[str, Any]], expected: str
) -> None:
    variables = {**BUFFERS["variables"], "stations.s1.capacity": {"choice": [1, 2]}}
    path = write_spec(_with({"constraints": constraints, "variables": variables}))
    with pytest.raises(OptimisationError) as caught:
        Optimisation.from_yaml(path)
    assert str(caught.value) == f"{path}: {expected}" or expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_issue_example_is_valid(write_spec: WriteSpec) -> None:
    line = {
        "name": "l",
        "release": {"interarrival": {"dist": "exponential", "mean": 60}},
        "stations": [
            {"name": "s1", "cycle_time": {"dist": "exponential", "mean": 50}},
            {"name": "s2", "cycle_time": {"dist": "exponential", "mean": 45}, "buffer": 1},
            {"name": "mill", "cycle_time": {"dist": "exponential", "mean": 80}, "buffer": 1},
        ],
    }
    spec = {
        "name": "buffers",
        "overrides": {"stations.mill.capacity": 2},
        "horizon": "500h",
        "warmup": "20h",
        "seed": 7,
        "replications": 5,
        "variables": {
            "stations.s1.buffer": {"int": [0, 6]},
            "stations.s2.buffer": {"int": [0, 6]},
            "stations.s1.capacity": {"choice": [1, 2]},
            "release.interarrival.mean": {"float": [50, 80]},
        },
        "constraints": [
            {"sum": ["stations.s1.buffer", "stations.s2.buffer"], "max": 6},
            {"sum": ["stations.s1.capacity"], "weights": [9000], "max": 12000},
        ],
        "objectives": [{"kpi": "throughput_per_hour", "goal": "maximize"}],
        "budget": {"evaluations": 60},
        "search": {"method": "tpe"},
        "selection": {"delta": 0.3, "alpha": 0.05},
    }
    optimisation = Optimisation.from_yaml(write_spec(spec, line))
    assert optimisation.spec.selection is not None and optimisation.spec.selection.delta == 0.3
    # the cost budget leaves only capacity 1
    assert optimisation.constraints.repair({**_design(), "stations.s1.capacity": 2}) == _design()


def _design() -> dict[str, Any]:
    return {
        "stations.s1.buffer": 2,
        "stations.s2.buffer": 3,
        "stations.s1.capacity": 1,
        "release.interarrival.mean": 60.0,
    }

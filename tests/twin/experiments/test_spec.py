"""Experiment files: the contract's shape validates; every mistake is one line naming file and field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.twin.experiments.conftest import WriteExperiment
from twin.experiments import Experiment, ExperimentError
from twin.experiments.spec import FullFactorial, LatinHypercube, Range, Scenarios, Sequential
from twin.line import LineError

CONTRACT = {
    "name": "buffer-study",
    "overrides": {"stations.cut.capacity": 2},
    "factors": {
        "stations.weld.buffer": [1, 2, 4],
        "stations.pack.failures.mttr": {"low": "5min", "high": "20min"},
    },
    "design": {"type": "latin_hypercube", "samples": 8, "seed": 3},
    "replications": 5,
    "horizon": "8h",
    "warmup": "1h",
    "seed": 7,
    "kpis": ["throughput_per_hour", "lead_time_mean_s", "wip_mean"],
}


def test_contract_shape(write_experiment: WriteExperiment) -> None:
    # the example of the issue, with failures completed so that the line is valid
    data = {**CONTRACT, "overrides": {**CONTRACT["overrides"], "stations.pack.failures.mtbf": "2h"}}
    experiment = Experiment.from_yaml(write_experiment(data))
    spec = experiment.spec
    assert spec.name == "buffer-study" and spec.seed == 7 and spec.replications == 5
    assert spec.horizon == 8 * 3600 and spec.warmup == 3600
    assert isinstance(spec.design, LatinHypercube) and spec.design.samples == 8
    assert isinstance(spec.factors["stations.pack.failures.mttr"], Range)
    assert len(experiment.scenarios) == 8
    line = experiment.lines["s1"]
    assert line.station("cut").capacity == 2
    assert line.station("pack").failures is not None
    assert 300 <= line.station("pack").failures.mttr <= 1200
    assert line.station("weld").buffer in (1, 2, 4)


def test_defaults_and_alternatives(write_experiment: WriteExperiment) -> None:
    experiment = Experiment.from_yaml(write_experiment({"factors": {"stations.weld.buffer": [1, 3]}}))
    assert experiment.spec.name == "exp"
    assert isinstance(experiment.spec.resolved_design, FullFactorial)
    assert experiment.spec.kpis == ["throughput_per_hour", "wip_mean", "lead_time_mean_s"]
    assert [s.factors for s in experiment.scenarios] == [
        {"stations.weld.buffer": 1},
        {"stations.weld.buffer": 3},
    ]
    explicit = Experiment.from_yaml(
        write_experiment(
            {
                "design": {
                    "scenarios": [{"id": "base"}, {"stations.weld.buffer": 6, "stations.pack.buffer": 0}]
                },
                "replications": {"until": {"kpi": "wip_mean", "relative_half_width": 0.05, "max": 20}},
                "warmup": "auto",
            }
        )
    )
    assert isinstance(explicit.spec.design, Scenarios)
    assert [s.id for s in explicit.scenarios] == ["base", "s2"]
    assert explicit.lines["s2"].station("pack").buffer == 0
    assert isinstance(explicit.spec.replications, Sequential)
    assert explicit.spec.warmup == "auto"
    assert Experiment.from_yaml(write_experiment({"design": "full_factorial", "factors": {"seed": [1]}}))


W = "factors.stations.weld"
HUNDRED_LEVELS = {"low": 0, "high": 9, "levels": 100}
BAD: list[tuple[dict[str, Any], str]] = [
    ({"replications": 0}, "replications: must be >= 1, got 0"),
    ({"replications": "many"}, "replications: must be a number of replications"),
    ({"replications": {"until": {"kpi": "wip_mean", "max": 10}}}, "replications.until: give exactly one of"),
    ({"replications": {"until": {"kpi": "speed", "half_width": 1}}}, "replications.until.kpi: unknown KPI"),
    ({"design": {"type": "latin_hypercube"}, "factors": {"seed": [1]}}, "design.samples: required field"),
    ({"design": "taguchi"}, "design: must be full_factorial"),
    ({"design": {"type": "latin_hypercube", "samples": 4}}, "design latin_hypercube needs factors"),
    ({"factors": {"stations.weld.buffer": {"low": 4, "high": 2}}}, f"{W}.buffer: high must be >= low"),
    ({"factors": {"stations.weld.buffer": []}}, f"{W}.buffer: must have at least 1 item"),
    ({"factors": {"stations.wled.buffer": [1, 2]}}, "factors.stations.wled.buffer: unknown station 'wled'"),
    ({"factors": {"stations.weld.buffer": [1, -1]}}, f"{W}.buffer: must be >= 0, got -1 (scenario s2)"),
    (
        {"factors": {"stations.weld.failures.mttr": ["5min"]}},
        f"{W}.failures.mttr: stations.weld.failures: give exactly one of mtbf or ttf (scenario s1)",
    ),
    ({"overrides": {"stations.pack.capacity": 0}}, "overrides.stations.pack.capacity: must be >= 1, got 0"),
    ({"overrides": {"stations.pack.speed": 3}}, "overrides.stations.pack.speed: unknown key"),
    (
        {"design": {"scenarios": [{"stations.cut.buffer": "x"}]}},
        "design.scenarios[0].stations.cut.buffer: must be a valid integer",
    ),
    ({"horizon": "1h", "warmup": "2h"}, "warmup must be shorter than horizon"),
    ({"horizon": "soon"}, "horizon: not a duration: 'soon'"),
    ({"kpis": ["stations.oven.utilization"]}, "kpis[0]: unknown station 'oven'"),
    ({"kpis": ["throughput"]}, "kpis[0]: unknown KPI 'throughput'"),
    ({"line": "missing.yaml"}, "line: file not found"),
    ({"colour": "red"}, "colour: unknown key"),
    (
        {"factors": {f"stations.{name}.buffer": HUNDRED_LEVELS for name in ("cut", "weld", "pack")}},
        "the design has 1,000,000 scenarios (at most 100,000)",
    ),
    (
        {"design": {"type": "latin_hypercube", "samples": 10**9}, "factors": {"seed": {"low": 1, "high": 9}}},
        "the design has 1,000,000,000 scenarios",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_files_name_file_and_field(write_experiment: WriteExperiment, data: dict, message: str) -> None:
    path = write_experiment(data)
    with pytest.raises(ExperimentError) as caught:
        Experiment.from_yaml(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: "), text
    assert message in text, text


def test_bad_line_file_names_the_line_file(write_experiment: WriteExperiment) -> None:
    path = write_experiment({}, line={"stations": [{"name": "a", "cycle_time": -1}]})
    with pytest.raises(LineError, match=r"tandem\.yaml: stations\[0\]\.cycle_time"):
        Experiment.from_yaml(path)


def test_not_a_mapping(tmp_path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ExperimentError, match=r"exp\.yaml: expected a mapping of experiment fields"):
        Experiment.from_yaml(path)

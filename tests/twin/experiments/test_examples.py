"""The shipped experiments run as they are, write every result file, and say what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from twin.experiments import Experiment

SHIPPED = sorted((ROOT / "simulations" / "experiments").glob("*.yaml"))
# the plant's studies run, shortened and with the trade-offs they show checked, in
# tests/twin/experiments/test_plant_studies.py; the others run here as they are
PLANT_STUDIES = {"technicians_buffer", "switch_off_energy"}
EXAMPLES = [path for path in SHIPPED if path.stem not in PLANT_STUDIES]


def test_examples_are_shipped() -> None:
    names = {path.stem for path in SHIPPED}
    assert {"buffer_allocation", "mttr_improvement", "rework_agv"} | PLANT_STUDIES <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    experiment = Experiment.from_yaml(path)
    result = experiment.run(workers=2, out=tmp_path)
    assert not result.interrupted
    assert {p.name for p in tmp_path.iterdir()} == {
        "runs.parquet",
        "summary.csv",
        "report.html",
        "experiment.json",
    }
    assert len(result.runs) >= 2 * len(experiment.scenarios)
    assert result.summary["ci95"].notna().all()
    assert result.metadata["wall_s"] > 0  # (how long the examples take is benchmarks' business)
    if path.stem == "mttr_improvement":
        rows = result.summary[result.summary["kpi"] == "throughput_per_hour"]
        assert ((rows["ci95"] <= 0.015 * rows["mean"]) | (rows["replications"] == 30)).all()
        # faster repairs at the mill (the bottleneck) raise its availability
        runs = result.runs
        assert runs["stations.mill.availability"].corr(runs["stations.mill.failures.mttr"]) < -0.3
    if path.stem == "rework_agv":  # the assembly line, a network (simulations/lines/assembly.yaml)
        assert experiment.base_line.is_network
        runs = result.runs
        one_agv = runs["stations.pack.transport.capacity"] == 1
        # one AGV (a trip of 75 s) is the bottleneck: the test waits for it, and the line makes less
        assert runs[one_agv]["throughput_per_hour"].max() < runs[~one_agv]["throughput_per_hour"].min()
        assert (
            runs[one_agv]["stations.test.blocked"].min() > 5 * runs[~one_agv]["stations.test.blocked"].max()
        )
        # every part sent back is screwed again
        rework = runs["stations.test.rework.probability"]
        assert runs["stations.screw.utilization"].corr(rework) > 0.5
    if path.stem == "buffer_allocation":
        assert result.summary["scenario"].iloc[0] == "as-built"
        assert result.metadata["warmup"]["mode"] == "auto"

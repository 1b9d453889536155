"""Running experiments: identical results on 1 worker, 2 workers and a Dask cluster; seeds; precision rule."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tests.twin.experiments.conftest import WriteExperiment
from twin.experiments import Experiment, replication_seed
from twin.experiments.stats import estimate

SMALL = {
    "name": "small",
    "factors": {"stations.weld.buffer": [0, 3], "stations.pack.cycle_time.mean": {"low": 40, "high": 50}},
    "replications": 3,
    "horizon": "3h",
    "warmup": "auto",
    "seed": 11,
    "kpis": ["throughput_per_hour", "wip_mean", "stations.weld.blocked"],
}


@pytest.fixture
def small(write_experiment: WriteExperiment) -> Experiment:
    return Experiment.from_yaml(write_experiment(SMALL))


def test_runs_frame(small: Experiment) -> None:
    result = small.run(workers=1)
    runs = result.runs
    assert len(runs) == 4 * 3
    assert list(runs.columns[:5]) == ["scenario", "replication", "seed", *SMALL["factors"]]
    assert {"throughput_per_hour", "lead_time_p95_s", "bottleneck", "stations.pack.oee"} <= set(runs.columns)
    assert "wall_s" not in runs.columns
    # every scenario's replication r runs with the seed of (experiment seed, r): common random numbers
    for row in runs.itertuples():
        assert row.seed == replication_seed(11, row.replication)
    assert runs.groupby("replication")["seed"].nunique().eq(1).all()
    assert runs["seed"].nunique() == 3
    # the summary agrees with the runs
    summary = result.summary.set_index(["scenario", "kpi"])
    for scenario, rows in runs.groupby("scenario"):
        est = estimate(rows["throughput_per_hour"])
        assert summary.loc[(scenario, "throughput_per_hour"), "mean"] == pytest.approx(est.mean)
        assert summary.loc[(scenario, "throughput_per_hour"), "ci95"] == pytest.approx(est.ci95)
        assert summary.loc[(scenario, "throughput_per_hour"), "replications"] == 3
    warm = result.metadata["warmup"]
    assert warm["mode"] == "auto" and 0 <= warm["warmup_s"] < 3 * 3600 and warm["pilot_runs"] == 20
    assert (runs["warmup_s"] == warm["warmup_s"]).all()


def test_common_random_numbers(write_experiment: WriteExperiment) -> None:
    # the ideal cycle time only enters OEE: with common random numbers every scenario sees the
    # same parts and failures, so everything else is identical, run by run
    data = {**SMALL, "factors": {"stations.pack.ideal_cycle_time": [40, 44]}, "warmup": 0}
    runs = Experiment.from_yaml(write_experiment(data)).run(workers=1).runs
    first, second = (rows.reset_index(drop=True) for _, rows in runs.groupby("scenario"))
    same = ["seed", "throughput_per_hour", "wip_mean", "lead_time_mean_s", "stations.weld.blocked"]
    pd.testing.assert_frame_equal(first[same], second[same], check_exact=True)
    assert (second["stations.pack.performance"] > first["stations.pack.performance"]).all()


def test_identical_on_one_and_two_workers_and_dask(small: Experiment, dask_scheduler: str) -> None:
    one = small.run(workers=1)
    two = small.run(workers=2)
    dask = small.run(scheduler=dask_scheduler)
    assert two.metadata["executor"] == {"executor": "local-processes", "workers": 2}
    assert dask.metadata["executor"]["executor"] == "dask" and dask.metadata["executor"]["workers"] == 2
    pd.testing.assert_frame_equal(one.runs, two.runs, check_exact=True)
    pd.testing.assert_frame_equal(one.runs, dask.runs, check_exact=True)
    pd.testing.assert_frame_equal(one.summary, dask.summary, check_exact=True)


def test_precision_target_adds_replications(write_experiment: WriteExperiment) -> None:
    data = {
        **SMALL,
        "warmup": "10min",
        "factors": {"stations.weld.buffer": [0, 4]},
        "replications": {"until": {"kpi": "throughput_per_hour", "relative_half_width": 0.03, "max": 25}},
    }
    result = Experiment.from_yaml(write_experiment(data)).run(workers=2)
    summary = result.summary[result.summary["kpi"] == "throughput_per_hour"]
    counts = result.runs.groupby("scenario").size()
    assert (counts > 5).any(), "the target needs more than the first 5 replications"
    for row in summary.itertuples():
        assert row.replications == counts[row.scenario]
        assert row.ci95 <= 0.03 * row.mean or row.replications == 25
    # a scenario's replications are 0..n-1: the first n seeds, whatever the rounds
    for _, rows in result.runs.groupby("scenario"):
        assert list(rows["replication"]) == list(range(len(rows)))
    assert result.metadata["replications"]["rule"] == "sequential"


def test_single_replication_has_no_interval(write_experiment: WriteExperiment) -> None:
    data = {**SMALL, "factors": {}, "replications": 1, "warmup": 0}
    result = Experiment.from_yaml(write_experiment(data)).run(workers=1)
    scenario = result.to_json()["scenarios"][0]
    assert scenario["replications"] == 1
    assert scenario["kpis"]["throughput_per_hour"]["std"] is None
    assert scenario["kpis"]["throughput_per_hour"]["ci95"] is None
    assert not math.isnan(scenario["kpis"]["throughput_per_hour"]["mean"])

"""The plant's shipped studies (issue 18) show the trade-offs they were built for, on short runs.

Each study runs on the plant's week (71.5 planned hours after the warm-up) with four replications
and fewer scenarios than it ships with. Every scenario of a study shares the replications' seeds
(common random numbers), so the effect of a factor is judged on the paired differences,
replication by replication: their 95% interval (Student t) must lie on the expected side of zero.
The wait for a technician is judged on the scenarios' own intervals, which do not overlap.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from foundation.yamlfile import read_mapping
from tests.conftest import ROOT
from twin.experiments import Experiment, ExperimentError
from twin.experiments.stats import estimate
from twin.optimisation import Optimisation, OptimisationError

STUDIES = ROOT / "simulations" / "experiments"


def short(name: str, **changes: object) -> Experiment:
    """The shipped study `name` on a week of the calendar, four replications (`changes` on top)."""
    path = STUDIES / f"{name}.yaml"
    data = read_mapping(path, ExperimentError, "a mapping")
    data.update({"horizon": "1w", "warmup": "1h", "replications": 4, **changes})
    return Experiment.from_dict(data, base_dir=path.parent, source=str(path))


def paired(runs: pd.DataFrame, kpi: str, better: pd.Series, worse: pd.Series) -> tuple[float, float]:
    """The mean and 95% half-width of `kpi` in the rows `better` minus the rows `worse`, paired by
    replication (the scenarios share each replication's seed)."""
    a = runs[better].set_index("replication")[kpi]
    b = runs[worse].set_index("replication")[kpi]
    est = estimate((a - b).to_numpy())
    return est.mean, est.ci95


def test_a_second_technician_ends_the_wait_and_a_buffer_protects_the_mill(tmp_path: Path) -> None:
    experiment = short(
        "technicians_buffer", factors={"repair.technicians": [1, 2], "stations.lathe.buffer": [1, 8]}
    )
    result = experiment.run(workers=2, out=tmp_path)
    runs = result.runs
    summary = result.summary.set_index(["repair.technicians", "stations.lathe.buffer", "kpi"])
    for buffer in (1, 8):
        # the mill waits for the one technician; with two it hardly ever waits
        one = summary.loc[(1, buffer, "stations.mill.waiting_repair")]
        two = summary.loc[(2, buffer, "stations.mill.waiting_repair")]
        assert one["mean"] - one["ci95"] > two["mean"] + two["ci95"]
        assert two["mean"] < 0.1 * one["mean"]
        crew = runs["stations.lathe.buffer"] == buffer
        mean, half = paired(
            runs,
            "throughput_per_planned_hour",
            crew & (runs["repair.technicians"] == 2),
            crew & (runs["repair.technicians"] == 1),
        )
        assert mean - half > 0, (buffer, mean, half)
    for technicians in (1, 2):
        # eight places behind the lathe keep the mill (the bottleneck) working through the lathe's stops
        crew = runs["repair.technicians"] == technicians
        mean, half = paired(
            runs,
            "stations.mill.blocked",
            crew & (runs["stations.lathe.buffer"] == 1),
            crew & (runs["stations.lathe.buffer"] == 8),
        )
        assert mean - half > 0, (technicians, mean, half)
        mean, half = paired(
            runs,
            "throughput_per_planned_hour",
            crew & (runs["stations.lathe.buffer"] == 8),
            crew & (runs["stations.lathe.buffer"] == 1),
        )
        assert mean - half > 0, (technicians, mean, half)


def test_switching_the_washer_off_sooner_saves_energy_per_part_and_lengthens_lead_time(
    tmp_path: Path,
) -> None:
    scenarios = [
        {"id": "never", "stations.wash.switch_off": None},
        {"id": "after-1min", "stations.wash.switch_off.after": "1min"},
        {"id": "after-10s", "stations.wash.switch_off.after": "10s"},
    ]
    experiment = short("switch_off_energy", design={"scenarios": scenarios})
    result = experiment.run(workers=2, out=tmp_path)
    runs = result.runs
    never, minute, soon = (runs["scenario"] == name for name in ("never", "after-1min", "after-10s"))
    assert (runs[never]["stations.wash.off"] == 0).all() and (runs[soon]["stations.wash.off"] > 0.05).all()
    for later, sooner in ((never, minute), (minute, soon)):
        mean, half = paired(runs, "energy_per_good_part_kwh", later, sooner)
        assert mean - half > 0, (mean, half)
        mean, half = paired(runs, "stations.wash.setup", sooner, later)  # the restarts
        assert mean - half > 0, (mean, half)
    # a part that finds the washer off waits 1-2 minutes for it to reheat
    mean, half = paired(runs, "lead_time_mean_s", soon, never)
    assert mean - half > 0, (mean, half)


def test_the_lathe_is_best_serviced_neither_too_often_nor_too_seldom(tmp_path: Path) -> None:
    """simulations/optimisation/plant_maintenance.yaml: with a spindle that wears out (Weibull
    shape 3) the weekly cost of services and failures is least at an interval inside the range."""
    path = ROOT / "simulations" / "optimisation" / "plant_maintenance.yaml"
    data = read_mapping(path, OptimisationError, "a mapping")
    data.update(replications=3)
    data["selection"] = {**data["selection"], "first": 3, "max_replications": 8}
    result = Optimisation.from_dict(data, base_dir=path.parent).run(workers=2, out=tmp_path)
    runs = pd.read_parquet(tmp_path / "evaluations.parquet")
    search = runs[runs["stage"] == "search"].groupby("stations.lathe.maintenance.every")
    cost = search["objective:maintenance_cost_eur"].mean()
    assert len(cost) == 8
    best = result.best["factors"]["stations.lathe.maintenance.every"]
    assert 3600 <= best <= 7200, cost
    assert cost[1800] > cost[best] and cost[14400] > cost[best], cost
    # serviced every 30 min of work it hardly ever fails; every 4 h it fails as if never serviced
    failures = search["stations.lathe.failures"].mean()
    assert failures[1800] < 2 and failures[14400] > 5, failures  # expected 0.27 and 13 a week

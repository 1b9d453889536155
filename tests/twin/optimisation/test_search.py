"""The search: no evaluated design breaks a constraint, exhaustive means every feasible design,
a study resumes, several objectives give a Pareto front."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.twin.optimisation.conftest import BUFFERS, TANDEM, WriteSpec
from twin.optimisation import Optimisation, OptimisationError
from twin.optimisation.constraints import meets
from twin.optimisation.spec import load_spec

FOUR = {
    **TANDEM,
    "stations": [
        *TANDEM["stations"],
        {"name": "s4", "cycle_time": {"dist": "exponential", "mean": 50}, "buffer": 1},
    ],
}

TIGHT = {
    "name": "tight",
    "horizon": "2h",
    "warmup": "10min",
    "seed": 3,
    "replications": 2,
    "variables": {
        "stations.s2.buffer": {"int": [0, 5]},
        "stations.s3.buffer": {"int": [0, 5]},
        "stations.s4.buffer": {"int": [0, 5]},
        "stations.s2.capacity": {"choice": [1, 2, 3]},
    },
    "constraints": [
        {"sum": ["stations.s2.buffer", "stations.s3.buffer", "stations.s4.buffer"], "min": 5, "max": 5},
        {"sum": ["stations.s2.capacity", "stations.s3.buffer"], "weights": [900, 150], "max": 2000},
    ],
    "objectives": [{"kpi": "throughput_per_hour", "goal": "maximize"}],
    "budget": {"evaluations": 14},
    "search": {"method": "tpe", "startup": 4, "batch": 3},
    "selection": {"delta": 2.0, "alpha": 0.1, "candidates": 3, "first": 3, "max_replications": 12},
}


def _trial_designs(study_file: Path) -> list[dict[str, Any]]:
    """The design of every finished trial in the journal (Optuna's own reader)."""
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(study_file)))
    study = optuna.load_study(study_name="tight", storage=storage)
    return [
        dict(json.loads(t.user_attrs["design"]))
        for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    ]


@pytest.mark.parametrize("method", ["tpe", "nsga2"])
def test_no_evaluated_design_breaks_a_constraint(write_spec: WriteSpec, tmp_path: Path, method: str) -> None:
    data = copy.deepcopy(TIGHT)
    data["search"] = {
        "method": method,
        "batch": 3,
        **({"startup": 4} if method == "tpe" else {"population": 6}),
    }
    path = write_spec(data, FOUR)
    spec = load_spec(path)
    result = Optimisation.from_yaml(path).run(workers=1, out=tmp_path / "out")
    runs = result.evaluations
    assert len(result.designs) == 14 and set(runs["stage"]) == {"search", "selection"}
    designs = [dict(zip(spec.variables, row, strict=True)) for row in runs[list(spec.variables)].to_numpy()]
    designs += _trial_designs(tmp_path / "out" / "study.journal")
    assert len(designs) > 14 * 2
    for design in designs:
        for constraint in spec.constraints:
            assert meets(constraint, design), (design, constraint)
    # the sampler proposed infeasible designs, and each was repaired, never run
    assert result.metadata["search"]["repaired"] > 0
    best = result.best["factors"]
    assert all(meets(c, best) for c in spec.constraints)


def test_exhaustive_evaluates_every_feasible_design_once(write_spec: WriteSpec) -> None:
    data = {**copy.deepcopy(BUFFERS), "search": {"method": "exhaustive"}, "budget": {}}
    result = Optimisation.from_yaml(write_spec(data)).run(workers=1)
    pairs = sorted(
        zip(result.designs["stations.s2.buffer"], result.designs["stations.s3.buffer"], strict=True)
    )
    assert pairs == sorted((a, b) for a in range(5) for b in range(5) if a + b <= 4)
    assert result.metadata["search"]["stopped"] == "exhausted"
    search = result.evaluations[result.evaluations["stage"] == "search"]
    assert len(search) == 15 * 3
    # common random numbers: replication r has one seed whatever the design
    assert search.groupby("replication")["seed"].nunique().eq(1).all()
    selection = result.evaluations[result.evaluations["stage"] == "selection"]
    assert set(selection["seed"]).isdisjoint(search["seed"])
    assert selection.groupby("replication")["seed"].nunique().eq(1).all()


def test_a_study_resumes_where_it_stopped(write_spec: WriteSpec, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = Optimisation.from_yaml(write_spec({**BUFFERS, "budget": {"evaluations": 5}})).run(
        workers=1, out=out
    )
    again = Optimisation.from_yaml(write_spec({**BUFFERS, "budget": {"evaluations": 8}})).run(
        workers=1, out=out
    )
    assert again.metadata["search"]["resumed_evaluations"] == 5
    assert len(again.designs) == 8
    columns = ["stations.s2.buffer", "stations.s3.buffer", "throughput_per_hour"]
    assert again.designs[columns].head(5).equals(first.designs[columns])
    # a different question in the same folder is refused, in one line
    changed = write_spec({**BUFFERS, "seed": 8})
    with pytest.raises(OptimisationError, match=r"holds study 'buffers' of a different optimisation file"):
        Optimisation.from_yaml(changed).run(workers=1, out=out)


def test_several_objectives_give_a_pareto_front(write_spec: WriteSpec) -> None:
    data = copy.deepcopy(BUFFERS)
    data["objectives"] = [
        {"kpi": "throughput_per_hour", "goal": "maximize"},
        {"kpi": "wip_mean", "goal": "minimize"},
    ]
    data["search"] = {"method": "exhaustive"}
    data["constraints"] = []
    data["variables"] = {"stations.s2.buffer": {"int": [0, 3]}, "stations.s3.buffer": {"int": [0, 3]}}
    result = Optimisation.from_yaml(write_spec(data)).run(workers=1)
    record = result.to_json()
    front = record["pareto"]
    assert front and all(set(p) == {"factors", "kpis"} for p in front)
    designs = result.designs
    points = designs[["throughput_per_hour", "wip_mean"]].to_numpy() * np.array([1, -1])
    on_front = designs["pareto"].to_numpy()
    for i, point in enumerate(points):
        dominated = any(np.all(o >= point) and np.any(o > point) for o in points)
        assert on_front[i] == (not dominated)
    assert len(front) == on_front.sum()
    # the selection stage ranks the front on the first objective
    assert record["selection"]["candidates"] == min(on_front.sum(), 3)
    assert result.best["factors"] in [p["factors"] for p in front]


def test_a_constraint_on_a_kpi_sets_designs_aside(write_spec: WriteSpec) -> None:
    data = {**copy.deepcopy(BUFFERS), "search": {"method": "exhaustive"}, "budget": {}}
    data["constraints"] = [{"kpi": "wip_mean", "max": 4.0}]
    result = Optimisation.from_yaml(write_spec(data)).run(workers=1)
    designs = result.designs
    kept = designs["meets_kpi_constraints"]
    assert kept.any() and not kept.all()
    search = result.evaluations[result.evaluations["stage"] == "search"]
    wip = search.groupby("design")["wip_mean"].mean()
    assert ((wip <= 4.0).reindex(designs["design"]).to_numpy() == kept.to_numpy()).all()
    # only designs that meet it are candidates, and the chosen one is among them
    assert not (designs["candidate"] & ~kept).any()
    chosen = designs[designs["chosen"]]
    assert len(chosen) == 1 and bool(chosen["meets_kpi_constraints"].iloc[0])


def test_a_search_that_has_seen_every_feasible_design_stops(write_spec: WriteSpec) -> None:
    data = copy.deepcopy(BUFFERS)
    data["constraints"] = [{"sum": ["stations.s2.buffer", "stations.s3.buffer"], "min": 4, "max": 4}]
    data["budget"] = {"evaluations": 60}
    result = Optimisation.from_yaml(write_spec(data)).run(workers=1)
    search = result.metadata["search"]
    assert search["stopped"] == "exhausted" and search["evaluations"] == 5
    pairs = set(zip(result.designs["stations.s2.buffer"], result.designs["stations.s3.buffer"], strict=True))
    assert pairs == {(a, 4 - a) for a in range(5)}

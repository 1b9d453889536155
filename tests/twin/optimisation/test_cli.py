"""`fabbrica optimize`: the JSON contract, the result files, one answer on 1 or 2 workers and on a
Dask cluster, exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fabbrica.cli import app
from tests.twin.optimisation.conftest import BUFFERS, WriteSpec, fabbrica
from twin.optimisation import Optimisation

runner = CliRunner()

BUFFERS_SELECTION = {"procedure": "KN", "delta": 1.0, "alpha": 0.05, "candidates": 3}


def test_json_contract_files_and_workers(write_spec: WriteSpec, tmp_path: Path) -> None:
    path = write_spec(BUFFERS)
    out = tmp_path / "out"
    done = fabbrica("optimize", str(path), "--out", str(out), "--workers", "2", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert set(record) == {"best", "evaluations", "replications", "selection", "wall_s"}
    assert set(record["best"]) == {"factors", "kpis"}
    assert set(record["best"]["factors"]) == set(BUFFERS["variables"])
    assert sum(record["best"]["factors"].values()) <= 4
    assert "throughput_per_hour" in record["best"]["kpis"]
    for values in record["best"]["kpis"].values():
        assert set(values) == {"mean", "ci95"} and all(isinstance(v, float) for v in values.values())
    assert record["evaluations"] == 8 and isinstance(record["replications"], int)
    assert record["replications"] >= 8 * 3 + 3 * 5
    assert record["selection"] == BUFFERS_SELECTION
    assert isinstance(record["wall_s"], float) and record["wall_s"] > 0

    assert {p.name for p in out.iterdir()} >= {
        "evaluations.parquet",
        "study.journal",
        "optimization.json",
        "report.html",
        "best_line.yaml",
    }
    runs = pd.read_parquet(out / "evaluations.parquet")
    assert len(runs) == record["replications"]
    assert {"stage", "design", "replication", "seed", "objective:throughput_per_hour"} <= set(runs.columns)
    meta = json.loads((out / "optimization.json").read_text())
    assert meta["best"]["factors"] == record["best"]["factors"]
    assert "probability" in meta["selection"]["guarantee"]
    report = (out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and report.count("<svg") >= 2
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", report) and "<script" not in report
    best_line = yaml.safe_load((out / "best_line.yaml").read_text())
    stations = {s["name"]: s for s in best_line["stations"]}
    assert stations["s2"]["buffer"] == record["best"]["factors"]["stations.s2.buffer"]

    # the same designs and the same answer in this process, on one worker
    alone = Optimisation.from_yaml(path).run(workers=1)
    assert alone.to_json()["best"] == record["best"]
    columns = ["design", "stations.s2.buffer", "stations.s3.buffer", "throughput_per_hour"]
    assert alone.designs[columns].equals(pd.read_csv(out / "designs.csv")[columns])


def test_a_kpi_constraint_excludes_a_design_and_the_selection_states_it(
    write_spec: WriteSpec, tmp_path: Path
) -> None:
    # every allocation of at most 4 places; mean WIP at most 3.5 parts rules out the ones with most output
    data = {**BUFFERS, "search": {"method": "exhaustive"}, "budget": {}}
    data["constraints"] = [*BUFFERS["constraints"], {"kpi": "wip_mean", "max": 3.5}]
    out = tmp_path / "out"
    done = runner.invoke(
        app, ["optimize", str(write_spec(data)), "--out", str(out), "--workers", "1", "--json"]
    )
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    selection = record["selection"]
    assert set(selection) == {"procedure", "delta", "alpha", "candidates", "kpi_constraints"}
    assert {k: selection[k] for k in ("procedure", "delta", "alpha", "candidates")} == BUFFERS_SELECTION
    [check] = selection["kpi_constraints"]  # the chosen design's one constraint on a KPI
    assert check["constraint"] == "constraints[1]" and check["kpi"] == "wip_mean" and check["max"] == 3.5
    assert check["decision"] == "met" and check["established"] is True and check["confidence"] == 0.95
    assert check["mean"] < check["upper"] <= 3.5 and check["lower"] is None and check["replications"] >= 5

    # the design with the most output in the search breaks the limit: not a candidate, not chosen
    designs = pd.read_csv(out / "designs.csv")
    top = designs.loc[designs["throughput_per_hour"].idxmax()]
    assert not top["meets_kpi_constraints"] and not top["candidate"] and not top["chosen"]
    chosen = designs[designs["chosen"]].iloc[0]
    assert record["best"]["factors"] == {p: int(chosen[p]) for p in BUFFERS["variables"]}
    assert chosen["throughput_per_hour"] < top["throughput_per_hour"]
    # the selection stage's own test of every candidate, in the table and in optimization.json
    table = pd.read_csv(out / "selection.csv")
    assert set(table["kpi_constraints"]) <= {"met", "undecided", "broken"}
    assert (table["constraints[1]:mean"] <= table["constraints[1]:upper"]).all()
    meta = json.loads((out / "optimization.json").read_text())["selection"]
    assert meta["kpi_constraints"] == selection["kpi_constraints"]
    assert set(meta["feasibility"]["candidates"]) == set(table["design"])
    assert meta["feasibility"]["looks"] == [5, 10, 20, 40]
    assert "wip_mean <= 3.5 established at 95%" in meta["guarantee"]
    assert "both statements hold together with probability >= 90%" in meta["guarantee"]


def _tasks_done(address: str) -> int:
    """How many tasks the workers of the Dask cluster at `address` have run so far, together."""
    from distributed import Client  # there, or the fixture `dask_scheduler` failed (CI) or skipped

    with Client(address, timeout=30, set_as_default=False) as client:
        done = client.run(lambda dask_worker: dask_worker.state.executed_count)
    return sum(done.values())


def test_on_a_dask_cluster_the_same_answer_as_on_local_workers(
    write_spec: WriteSpec, tmp_path: Path, dask_scheduler: str
) -> None:
    # small: 6 designs x 2 replications of 3 h in the search, KN over 3 with 4 first replications
    small = {
        **BUFFERS,
        "horizon": "3h",
        "replications": 2,
        "budget": {"evaluations": 6},
        "selection": {**BUFFERS["selection"], "first": 4, "max_replications": 12},
    }
    path = write_spec(small)
    # the reference on two local worker processes, through the API (a second command would only
    # add its start-up)
    local = Optimisation.from_yaml(path).run(workers=2, out=tmp_path / "local")
    before = _tasks_done(dask_scheduler)
    done = fabbrica(
        "optimize", str(path), "--out", str(tmp_path / "dask"), "--scheduler", dask_scheduler, "--json"
    )
    assert done.returncode == 0, done.stderr
    on_dask, on_local = json.loads(done.stdout), json.loads(json.dumps(local.to_json()))
    assert on_dask.pop("wall_s") > 0 and on_local.pop("wall_s") > 0
    assert on_dask == on_local  # the same best design, its KPIs to the bit, the same counts
    assert on_dask["evaluations"] == 6

    # every run, search and selection, the same to the bit; the same designs and the same KN stage
    runs = pd.read_parquet(tmp_path / "dask" / "evaluations.parquet")
    pd.testing.assert_frame_equal(
        runs, pd.read_parquet(tmp_path / "local" / "evaluations.parquet"), check_exact=True
    )
    assert set(runs["stage"]) == {"search", "selection"}
    for name in ("designs.csv", "selection.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "dask" / name), pd.read_csv(tmp_path / "local" / name), check_exact=True
        )

    # and the runs went to the cluster: its two workers ran exactly the result's runs
    meta = json.loads((tmp_path / "dask" / "optimization.json").read_text())
    assert meta["executor"] == {"executor": "dask", "scheduler": dask_scheduler, "workers": 2, "threads": 2}
    assert json.loads((tmp_path / "local" / "optimization.json").read_text())["executor"] == {
        "executor": "local-processes",
        "workers": 2,
    }
    assert _tasks_done(dask_scheduler) - before == on_dask["replications"] == len(runs)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"variables": {"stations.s2.buffer": {"int": [0, "x"]}}}, "variables.stations.s2.buffer.int[1]: "),
        (
            {"constraints": [{"sum": ["stations.s2.buffer", "stations.s3.buffer"], "min": 9}]},
            "constraints[0]: no design of the variables' ranges meets it",
        ),
        ({"search": {"method": "grid"}}, "search.method: must be"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    write_spec: WriteSpec, tmp_path: Path, change: dict[str, object], expected: str
) -> None:
    path = write_spec({**BUFFERS, **change})
    done = runner.invoke(app, ["optimize", str(path), "--out", str(tmp_path / "out"), "--json"])
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: {path}: {expected}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
    missing = runner.invoke(app, ["optimize", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "missing.yaml: file not found" in missing.stderr

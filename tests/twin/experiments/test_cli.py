"""`fabbrica experiment run`: the JSON contract, the result files, exit code 2, Ctrl-C keeps finished runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from fabbrica.cli import app
from tests.conftest import DEMONSTRATOR, ROOT
from tests.twin.experiments.conftest import WriteExperiment, fabbrica

runner = CliRunner()

STUDY = {
    "name": "cli-study",
    "factors": {"stations.weld.buffer": [1, 4], "stations.pack.failures.mttr": ["2min", "10min"]},
    "overrides": {"stations.pack.failures": {"mtbf": "1h", "mttr": "5min"}},
    "replications": 3,
    "horizon": "4h",
    "warmup": "30min",
    "seed": 5,
    "kpis": ["throughput_per_hour", "lead_time_mean_s", "wip_mean"],
}


def test_json_contract_and_files(
    write_experiment: WriteExperiment, tmp_path: Path, dask_scheduler: str
) -> None:
    path = write_experiment(STUDY)
    done = fabbrica(
        "experiment", "run", str(path), "--out", str(tmp_path / "local"), "--workers", "2", "--json"
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert set(record) == {"experiment", "scenarios", "runs", "wall_s"}
    assert record["experiment"] == "cli-study" and record["runs"] == 12
    assert isinstance(record["wall_s"], float) and record["wall_s"] > 0
    assert len(record["scenarios"]) == 4
    first = record["scenarios"][0]
    assert set(first) == {"id", "factors", "replications", "kpis"}
    assert isinstance(first["id"], str) and first["replications"] == 3
    assert first["factors"] == {"stations.weld.buffer": 1, "stations.pack.failures.mttr": "2min"}
    for scenario in record["scenarios"]:
        assert set(scenario["kpis"]) == set(STUDY["kpis"])
        for values in scenario["kpis"].values():
            assert set(values) == {"mean", "std", "ci95"}
            assert all(isinstance(v, float) for v in values.values())
    # progress on stderr, never on stdout
    assert "runs" in done.stderr

    out = tmp_path / "local"
    assert {p.name for p in out.iterdir()} >= {
        "runs.parquet",
        "summary.csv",
        "report.html",
        "experiment.json",
    }
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 12 and {"stations.weld.buffer", "stations.pack.failures.mttr"} <= set(runs.columns)
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[-5:]) == ["kpi", "mean", "std", "ci95", "replications"]
    assert len(summary) == 4 * 3
    meta = json.loads((out / "experiment.json").read_text())
    assert meta["seeds"]["experiment"] == 5 and len(meta["seeds"]["replications"]) == 3
    assert len(meta["design"]["scenarios"]) == 4 and meta["versions"]["simpy"]
    assert meta["wall_s"] > 0 and meta["interrupted"] is False
    report = (out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and report.count("<svg") >= 4
    # self-contained: nothing to fetch (the SVGs declare their XML namespace, which is not a fetch)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", report)
    assert "<script" not in report and "<link" not in report

    # the same experiment on a Dask cluster gives the same runs
    done = fabbrica(
        "experiment",
        "run",
        str(path),
        "--out",
        str(tmp_path / "dask"),
        "--scheduler",
        dask_scheduler,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(runs, pd.read_parquet(tmp_path / "dask" / "runs.parquet"), check_exact=True)


def test_table_output(write_experiment: WriteExperiment, tmp_path: Path) -> None:
    data = {**STUDY, "factors": {"stations.weld.buffer": [1, 4]}, "replications": 2}
    path = write_experiment(data)
    done = runner.invoke(
        app, ["experiment", "run", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]
    )
    assert done.exit_code == 0, done.output
    assert "cli-study" in done.stdout and "throughput_per_hour" in done.stdout and "±" in done.stdout


def test_bad_file_exits_2_with_one_line(write_experiment: WriteExperiment, tmp_path: Path) -> None:
    never = str(tmp_path / "never")
    path = write_experiment({"factors": {"stations.weld.buffer": [-1]}})
    done = fabbrica("experiment", "run", str(path), "--out", never, "--json")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: factors.stations.weld.buffer: must be >= 0, got -1 (scenario s1)"
    ]
    assert done.stdout == ""
    for data, field in (
        ({"replications": {"until": {"kpi": "nope", "half_width": 1}}}, "replications.until.kpi"),
        ({"design": {"type": "latin_hypercube", "samples": 0}, "factors": {"seed": [1]}}, "design.samples"),
        ({"overrides": {"stations.nope.buffer": 1}}, "overrides.stations.nope.buffer"),
    ):
        path = write_experiment(data)
        result = runner.invoke(app, ["experiment", "run", str(path), "--out", never])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and field in lines[0], result.stderr
        assert result.stdout == ""
    missing = runner.invoke(app, ["experiment", "run", str(tmp_path / "missing.yaml"), "--out", never])
    assert missing.exit_code == 2 and "missing.yaml: file not found" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    result = runner.invoke(app, ["experiment", "run", str(broken), "--out", never])
    assert result.exit_code == 2 and "broken.yaml: invalid YAML" in result.stderr
    assert not (tmp_path / "never").exists()


def test_validate_command(write_experiment: WriteExperiment) -> None:
    result = runner.invoke(app, ["experiment", "validate", str(write_experiment(STUDY))])
    assert result.exit_code == 0 and "4 scenarios, up to 12 runs" in result.stdout


def test_ctrl_c_keeps_finished_runs(write_experiment: WriteExperiment, tmp_path: Path) -> None:
    # 1000 runs of 16 h on the demonstrator: about 25 s on two idle cores, interrupted after 10 s
    # (runs of 40 h and 12 s left no run finished when the machine was busy with the line's tests)
    data = {
        "name": "long",
        "factors": {"stations.lathe.buffer": list(range(1, 11))},
        "replications": 100,
        "horizon": "16h",
        "warmup": "30min",
    }
    line = yaml.safe_load(DEMONSTRATOR.read_text())
    line["engine"] = "simpy"  # sized for the SimPy engine: the event engine makes all 1000 runs in 6 s
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, "-m", "fabbrica", "experiment", "run", str(write_experiment(data, line)),
         "--out", str(out), "--workers", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(10)
        assert process.poll() is None, process.communicate()
        os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole process group
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()  # reaps it and closes its pipes
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted:" in stderr
    runs = pd.read_parquet(out / "runs.parquet")
    assert 0 < len(runs) < 1000
    record = json.loads(stdout)
    assert record["runs"] == len(runs)
    assert json.loads((out / "experiment.json").read_text())["interrupted"] is True
    assert "interrupted" in (out / "report.html").read_text()

"""`fabbrica demo --line simulations/lines/assembly.yaml`: the whole loop on a line that is a network.

The simulated hardware serves the assembly line, the connectors record it, the twin is calibrated
(rework and routes included) and validated, the what-if runs, and the twin forecasts the second
half of the window from the network state rebuilt from the historian at its middle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.conftest import run_fabbrica as fabbrica
from twin.line import load_line

ASSEMBLY = ROOT / "simulations" / "lines" / "assembly.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("demo-network")
    args = ["--line", str(ASSEMBLY), "--out", str(out), "--speed", "1200", "--hours", "2", "--seed", "3"]
    done = fabbrica("demo", *args, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout, done.stderr


def test_the_demo_runs_the_whole_loop_on_a_network_line(demo: tuple[Path, str, str]) -> None:
    out, stdout, stderr = demo
    assert stdout.strip().endswith("report.html")
    assert "verdict" in stderr and "Traceback" not in stderr
    calibrated = load_line(out / "calibrated.yaml")
    assert calibrated.is_network and calibrated.routes is not None
    test = calibrated.station("test")
    assert test.rework is not None and test.rework.to == "screw"
    assert (out / "experiment" / "runs.parquet").exists()


def test_the_forecast_from_the_window_middle_runs_on_a_network_line(demo: tuple[Path, str, str]) -> None:
    """The network line's state is rebuilt from the historian at the middle of the window (an
    assembly's buffer per input, the rework queue, the AGVs' parts) and the twin forecasts from it."""
    out, _, stderr = demo
    midway = json.loads((out / "forecast-midway.json").read_text())
    report = (out / "report.html").read_text()
    said = " ".join(stderr.split())
    assert "<h2>5. Forecast from the middle of the window</h2>" in report
    assert "<h2>4. What if?</h2>" in report
    assert "left_out" not in midway, midway.get("left_out")
    assert "forecast from the window's middle: P10/P50/P90" in said
    assert "forecast P50" in report and "Left out" not in report

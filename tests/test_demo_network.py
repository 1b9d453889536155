"""`fabbrica demo --line simulations/lines/assembly.yaml`: the whole loop on a line that is a network.

The simulated hardware serves the assembly line, the connectors record it, the twin is calibrated
(rework and routes included) and validated, and the what-if runs; the forecast from the middle of
the window needs the line's state rebuilt from the historian, which a network line cannot have
yet: the report and the command say that section is left out and why, and the demo does not fail.
"""

from __future__ import annotations

import html
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


def test_the_forecast_section_is_there_or_says_why_it_is_left_out(demo: tuple[Path, str, str]) -> None:
    """While a network line's state cannot be rebuilt from the historian (or run from), the
    section says so in one line; once it can, the forecast is there as on a chain line."""
    out, _, stderr = demo
    midway = json.loads((out / "forecast-midway.json").read_text())
    report = (out / "report.html").read_text()
    said = " ".join(stderr.split())
    assert "<h2>5. Forecast from the middle of the window</h2>" in report
    assert "<h2>4. What if?</h2>" in report
    if "left_out" in midway:
        why = midway["left_out"]
        assert why and "\n" not in why
        assert f"forecast from the window's middle: left out ({why})" in said
        assert "Left out: the forecast starts from the line's state at the middle" in report
        assert html.escape(why) in report
    else:
        assert "forecast from the window's middle: P10/P50/P90" in said
        assert "forecast P50" in report

"""`fabbrica demo` end to end at high speed, its report in headless Chromium, and the twin
calibrate/validate commands on the historian the demo recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .ci import in_ci
from .conftest import run_fabbrica as fabbrica

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if in_ci():
            pytest.fail("chromium is not installed (scripts/install-system-packages.sh installs it)")
        pytest.skip("chromium is not installed")
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    # a relative --out, as the README's command uses
    done = fabbrica(
        "demo", "--out", out.name, "--speed", "1200", "--hours", "10", "--seed", "3", cwd=out.parent
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("report.html")
    return out


def test_demo_produces_every_artefact(demo: Path) -> None:
    for name in (
        "historian.duckdb",
        "truth.json",
        "calibrated.yaml",
        "calibrated.report.json",
        "report.html",
    ):
        assert (demo / name).exists(), name
    assert (demo / "experiment" / "runs.parquet").exists()
    report = json.loads((demo / "calibrated.report.json").read_text())
    truth = {"mill": (360, 30), "lathe": (480, 40), "wash": (600, 30), "test": (300, 20)}
    for station in report["stations"]:
        if station["station"] in truth:
            mtbf, mttr = truth[station["station"]]
            n = station["failures"]
            assert n >= 30
            # exponential times: the MLE's relative standard error is 1/sqrt(n); 3.29 of them (99.9 %)
            assert abs(station["mtbf_s"] / mtbf - 1) <= 3.29 / np.sqrt(n)
            repair_cv = 0.5 if station["station"] == "wash" else 1.0  # lognormal cv 0.5, else exponential
            assert abs(station["mttr_s"] / mttr - 1) <= 3.29 * repair_cv / np.sqrt(n)


def test_the_recording_has_every_part_the_line_made_to_its_last(demo: Path) -> None:
    """The demo stops its connector only once the broker has delivered the last part events: a
    recording cut short of the last seconds' parts (a loaded machine, the broker in the demo's
    process) made the speed inferred from it 14 % low and every calibrated power wrong. From the
    first part it recorded (the connector subscribes a moment after the line starts) it holds
    every part the truth has, to the last."""
    from twinloop.history import open_source

    truth = json.loads((demo / "truth.json").read_text())
    parts = open_source(str(demo / "historian.duckdb"))("part", 0, 2**62)
    first = parts["time"].min()
    made = {
        (name, pd.Timestamp(part["ts"]))
        for name, station in truth["stations"].items()
        for part in station["parts"]
        if pd.Timestamp(part["ts"]) >= first
    }
    assert set(zip(parts["station"], parts["time"], strict=True)) == made and len(parts) == len(made)
    assert (first - pd.Timestamp(truth["start"])).total_seconds() < 2.0


def test_the_forecast_from_the_middle_of_the_window_against_what_the_line_did(demo: Path) -> None:
    """The report's forecast section: the state rebuilt at the middle of the recorded window is the
    truth's, the twin's fan is coherent, and the line's actual output after the middle is the
    truth's count and lies within the twin's spread."""
    from datetime import datetime

    from simulations.hardware.truth import truth_state

    midway = json.loads((demo / "forecast-midway.json").read_text())
    truth = json.loads((demo / "truth.json").read_text())
    assert "<h2>5. Forecast from the middle of the window</h2>" in (demo / "report.html").read_text()
    parts, actual = midway["forecast"]["parts_out"], midway["actual"]["parts_out"]
    assert isinstance(actual, int) and actual > 0
    assert parts["p10"] <= parts["p50"] <= parts["p90"]
    # the fan: 20 instants up to the horizon, each quantile growing, the last one the horizon's
    path, done = midway["forecast"]["path"], midway["actual"]["path"]
    assert len(path) == len(done) == 20 and path[-1]["t_s"] == pytest.approx(midway["horizon_s"])
    for q in ("p10", "p50", "p90"):
        assert np.all(np.diff([point[q] for point in path]) >= 0) and path[-1][q] == parts[q]
    assert np.all(np.diff([point["parts_out"] for point in done]) >= 0) and done[-1]["parts_out"] == actual
    # what the line did: the last station's PLC counter between the middle and the end, in the truth
    start = datetime.fromisoformat(truth["start"].replace("Z", "+00:00"))
    at = datetime.fromisoformat(midway["at"].replace("Z", "+00:00"))
    middle = (at - start).total_seconds() * truth["speed"]
    assert middle == pytest.approx(midway["at_s"], abs=0.01)
    counts = truth["stations"]["test"]["values"]["PartsProduced"]
    made = [e["value"] for e in counts if e["t"] <= truth["simulated_s"]][-1]
    assert actual == made - [e["value"] for e in counts if e["t"] <= middle][-1]
    # the state the forecast started from is the line's true state at the middle
    state, true = midway["state"], truth_state(truth, middle)
    for name, station in true.stations.items():
        rebuilt = state["stations"][name]
        assert (rebuilt.get("buffer", 0), rebuilt.get("produced")) == (station.buffer, station.produced)
        for machine, expected in zip(rebuilt["machines"], station.machines or [], strict=True):
            assert (machine["state"], machine.get("product")) == (expected.state, expected.product)
            assert machine.get("elapsed_s", 0.0) == pytest.approx(expected.elapsed_s, abs=0.01)
    # a twin of this line from this state: the actual count lies within twice the P10-P90 width
    # of the P50 (about 5 sd; this run: 220 parts, P10/P50/P90 207/215/225, inside the band)
    assert abs(actual - parts["p50"]) <= 2 * (parts["p90"] - parts["p10"]), (actual, parts)


def test_report_renders_in_chromium(demo: Path, tmp_path: Path) -> None:
    browser = chromium()
    page = (demo / "report.html").as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    console_errors = [
        line for line in dom.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()
    ]
    assert console_errors == []
    assert dom.stdout.count("<svg") >= 6  # throughput, states, fits, experiment figures
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    ink = (pixels.min(axis=2) < 0.85).mean()  # share of pixels that are not near-white
    coloured = (np.ptp(pixels, axis=2) > 0.25).mean()  # bars and lines in colour
    assert ink > 0.03 and coloured > 0.005


def test_validate_json_contract_and_a_wrong_twin(demo: Path, tmp_path: Path) -> None:
    """The calibrated twin is `valid`, the same twin with the test station 20 % slower `invalid`.

    A check passes when |twin mean - observed| <= max(tolerance * observed, the twin's 95 %
    prediction half-width) (twin/calibration/validate.py). For a twin equal to the line the
    prediction arm alone caps a check's false alarm at 5 %, so the rule only guarantees a
    false-invalid chance <= 1 - 0.95**7 = 30 % over the 7 checks here (throughput, WIP, five
    working shares); the 5 % tolerance arm lowers it. Measured on 400 seeded 10-hour windows
    recorded as here (benchmarks/validation_false_alarm.py, docs/calibration.md): with the WIP
    from the PLCs' OccupancySeconds counters the calibrated twin was called invalid in 12 of 400
    (3.0 %, 95 % interval 1.7-5.2 %), 11 of them by the WIP check (with Occupancy sampled at
    each 600 s refresh, before the counter: 38 of 400); each throughput and working-share check
    failed at most once in 400 (0.01-0.9 % by the normal approximation).
    Far too high for a random run; but this run is seeded (line seed 3, twin seeds 1-10), only
    the wall-clock end of the window varies (a few simulated seconds in 10 hours: two runs of
    this commit differed by at most 0.4 % in any observed value), and this commit's deviations
    are at most 1.1 % (test.working; WIP 0.7 %) against the 5 % allowed, so the verdict is fixed
    for the commit. The energy meters add a check of energy per good part for each station whose
    power calibration wrote (and the line's); their false-alarm rate has not been measured over
    seeds, and this commit's run passes them.
    """
    source = str(demo / "historian.duckdb")
    done = fabbrica("twin", "validate", str(demo / "calibrated.yaml"), "--source", source, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result["throughput"]) >= {"observed", "twin_mean", "twin_ci95", "rel_error"}
    assert isinstance(result["tolerance"], float) and result["tolerance"] == 0.05
    assert set(result["stations"]["mill"]) >= {"observed", "twin"}
    # the PLCs' occupancies give the line's WIP; each assembly machine's state makes it checkable
    assert set(result["wip"]) >= {"observed", "twin_mean", "twin_ci95", "rel_error"}
    assert result["wip"]["basis"] == "OccupancySeconds"  # the PLCs' counters, not sampled values
    assert result["wip"]["observed"] > 1 and {"wip", "assembly.working"} <= set(result["checks"])
    stations = {"mill", "lathe", "wash", "assembly", "test"}
    # the energy meters give each station's energy per good part where calibration found its power
    calibrated = yaml.safe_load((demo / "calibrated.yaml").read_text())
    powered = {station["name"] for station in calibrated["stations"] if station.get("power")}
    energy = {f"{name}.energy_per_good_part" for name in powered} | (
        {"energy_per_good_part"} if powered else set()
    )
    assert set(result["checks"]) == {"throughput", "wip", *(f"{name}.working" for name in stations), *energy}
    failed = {name: check for name, check in result["checks"].items() if not check["ok"]}
    assert result["verdict"] == "valid" and not failed, failed
    slow = yaml.safe_load((demo / "calibrated.yaml").read_text())
    test_station = next(s for s in slow["stations"] if s["name"] == "test")
    test_station["cycle_time"]["mean"] *= 1.2
    wrong = tmp_path / "slow.yaml"
    wrong.write_text(yaml.safe_dump(slow))
    done = fabbrica("twin", "validate", str(wrong), "--source", source, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    slow_result = json.loads(done.stdout)
    assert slow_result["verdict"] == "invalid"
    # the slower station works about 20 % more (+21.0 %, sd 2.1 %, over the 400 seeds): 7.6 sd
    # beyond the 5 % allowed, a false `valid` chance of about 1e-14; this run's is +19.6 %
    check = slow_result["checks"]["test.working"]
    assert not check["ok"] and check["rel_error"] >= 3 * slow_result["tolerance"], check


def test_calibrate_command(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibrated.yaml"
    done = fabbrica(
        "twin",
        "calibrate",
        "--line",
        "simulations/lines/demonstrator.yaml",
        "--source",
        str(demo / "historian.duckdb"),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# Calibrated by") and "data window" in text
    assert "speed 1200" in text  # inferred from the recorded cycle and working times
    calibrated = yaml.safe_load(text)
    assert calibrated["stations"][0]["failures"]["basis"] == "operating"


def test_calibrate_bad_source_is_one_line(tmp_path: Path) -> None:
    done = fabbrica(
        "twin",
        "calibrate",
        "--line",
        "simulations/lines/demonstrator.yaml",
        "--source",
        str(tmp_path / "none.duckdb"),
        "--out",
        str(tmp_path / "x.yaml"),
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "none.duckdb" in done.stderr

"""`fabbrica twin forecast` on a network line (simulations/lines/assembly.yaml) from a state file.

The state is a snapshot of the engine mid-shift (assemblies' buffers per input, the rework queue,
parts on the AGVs with their remaining time) with a few parts added by hand (an arrived part and
one given only its elapsed travel): the command answers with the contracted JSON object on the
event engine; the flow engine, asked for, refuses the line in one line; a state the line cannot
hold is one line naming the file and field, exit 2. All command lines run in one interpreter
(tests/fabbrica_driver.py), each as a fresh `fabbrica` run would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from twin.engine import LineModel
from twin.line import load_line

ROOT = Path(__file__).resolve().parents[1]
ASSEMBLY = ROOT / "simulations" / "lines" / "assembly.yaml"
DRIVER = ROOT / "tests" / "fabbrica_driver.py"
STATIONS = ["mill", "lathe", "wash", "press", "deburr", "assembly", "screw", "test", "pack"]


def mid_shift() -> dict[str, Any]:
    """The line's state 3 h into a run, with an arrived part and a travelling one on the AGVs."""
    line = load_line(ASSEMBLY)
    model = LineModel(line, 11)
    model.env.run(until=3 * 3600.0)
    data = model.snapshot().to_json()
    pack = data["stations"]["pack"]
    pack["transport"] = [{"remaining_s": 0.0, "product": "B"}, {"elapsed_s": 20.0}]
    data["stations"]["screw"]["returns"] = 1
    data["time"] = "2026-12-02T09:00:00Z"
    return data


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "buffer at the assembly": (
        {"assembly": {"buffer": 2}},
        "stations.assembly.buffer: 'assembly' is an assembly with a buffer per input: give buffers:"
        " {wash: n, deburr: n}",
    ),
    "unknown input": (
        {"assembly": {"buffers": {"lathe": 1}}},
        "stations.assembly.buffers.lathe: not an input of 'assembly' (inputs: wash, deburr)",
    ),
    "transport over capacity": (
        {"pack": {"transport": [{"remaining_s": 5}] * 3}},
        "stations.pack.transport: 3 parts, but the transport holds 2",
    ),
    "blocked at the exit": (
        {"pack": {"machines": [{"state": "blocked"}]}},
        "stations.pack.machines[0].state: a machine of 'pack' is never blocked: its parts leave the line",
    ),
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("forecast-network")
    state = folder / "state.json"
    state.write_text(json.dumps(mid_shift()))
    forecast = ["twin", "forecast", str(ASSEMBLY), "--horizon", "2h", "-n", "20", "--seed", "5", "--json"]
    cases = {
        "good": [*forecast, "--state", str(state), "--target", "400"],
        "flow": [*forecast, "--state", str(state), "--engine", "flow"],
    }
    for name, (stations, _) in BAD.items():
        path = folder / f"{name.replace(' ', '-')}.json"
        path.write_text(json.dumps({"format": "fabbrica-state/1", "stations": stations}))
        cases[name] = [*forecast, "--state", str(path)]
    results = folder / "results.json"
    request = json.dumps([{"args": args, "cwd": str(folder)} for args in cases.values()])
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(results)],
        input=request,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and not done.stdout, done.stderr[-3000:]
    answers = dict(zip(cases, json.loads(results.read_text()), strict=True))
    answers["state"] = {"path": str(state), "data": json.loads(state.read_text())}
    return answers


def test_a_network_line_forecasts_from_its_state(answers: dict[str, dict[str, Any]]) -> None:
    good = answers["good"]
    assert good["returncode"] == 0, good["stderr"]
    result = json.loads(good["stdout"])
    assert set(result) == {
        "horizon_s", "replications", "engine", "parts_out", "throughput_per_hour", "stations",
        "bottleneck", "produced", "time", "target",
    }  # fmt: skip
    assert result["engine"] == "event" and result["replications"] == 20 and result["horizon_s"] == 7200.0
    assert set(result["parts_out"]) == {"mean", "ci95", "p10", "p50", "p90"}
    assert 0 < result["parts_out"]["p10"] <= result["parts_out"]["p50"] <= result["parts_out"]["p90"]
    assert list(result["stations"]) == STATIONS and result["bottleneck"] in STATIONS
    for values in result["stations"].values():
        assert sum(values["shares"].values()) == pytest.approx(1.0)
    state = answers["state"]["data"]
    assert result["produced"] == state["stations"]["pack"]["produced"] > 0
    assert result["time"] == "2026-12-02T09:00:00Z"
    assert result["target"]["parts"] == 400 and 0.0 <= result["target"]["probability"] <= 1.0
    # the snapshot caught parts in the places a network state adds
    stations = state["stations"]
    assert sum(stations["assembly"]["buffers"].values()) > 0 and stations["screw"]["returns"] == 1


def test_the_flow_engine_refuses_the_network_line_in_one_line(answers: dict[str, dict[str, Any]]) -> None:
    flow = answers["flow"]
    assert flow["returncode"] == 2 and flow["stdout"] == ""
    lines = flow["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {ASSEMBLY}: engine: flow cannot run this line:")


@pytest.mark.parametrize("name", list(BAD))
def test_a_network_state_the_line_cannot_hold_is_one_line_and_exit_2(
    answers: dict[str, dict[str, Any]], name: str
) -> None:
    done = answers[name]
    assert done["returncode"] == 2 and done["stdout"] == ""
    lines = done["stderr"].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done["stderr"]
    assert (
        lines[0].endswith(BAD[name][1]) and lines[0].startswith("error: ") and ".json: stations." in lines[0]
    )

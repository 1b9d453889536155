"""`fabbrica twin forecast`: the JSON contract, exact answers for a Poisson line, exit code 2 on bad input."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from tests.conftest import DEMONSTRATOR, run_fabbrica
from twin.station import REPORTED_STATES

fabbrica = partial(run_fabbrica, timeout=180)

QUANTILE_KEYS = {"p10", "p50", "p90"}


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def poisson_line(tmp_path: Path) -> Path:
    """One exponential machine with raw material always there: its departures are a Poisson process."""
    return _write(
        tmp_path / "poisson.yaml",
        "name: poisson\nstations:\n  - {name: press, cycle_time: {dist: exponential, mean: 60}}\n",
    )


def _forecast(*args: str) -> dict[str, Any]:
    done = fabbrica("twin", "forecast", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_json_object_has_the_contracted_keys_and_types(tmp_path: Path) -> None:
    state = _write(
        tmp_path / "state.json",
        {
            "format": "fabbrica-state/1",
            "time": "2026-12-02T10:40:00Z",
            "stations": {
                "lathe": {"buffer": 3, "machines": [{"state": "down", "elapsed_s": 360}]},
                "assembly": {
                    "buffer": 2,
                    "machines": [
                        {"state": "working", "elapsed_s": 12.5, "product": "A"},
                        {"state": "starved"},
                    ],
                },
                "test": {"produced": 212},
            },
            "released": 230,
        },
    )
    result = _forecast(
        str(DEMONSTRATOR),
        "--state",
        str(state),
        "--horizon",
        "1h",
        "-n",
        "30",
        "--seed",
        "4",
        "--target",
        "250",
    )
    assert isinstance(result["horizon_s"], float) and result["horizon_s"] == 3600.0
    assert result["replications"] == 30
    assert result["engine"] == "event"  # parallel machines and calendar failures: not the flow engine
    parts = result["parts_out"]
    assert set(parts) == {"mean", "ci95"} | QUANTILE_KEYS
    assert all(isinstance(parts[key], float) for key in parts)
    assert parts["p10"] <= parts["p50"] <= parts["p90"]
    assert set(result["throughput_per_hour"]) == {"mean", "ci95"}
    assert result["throughput_per_hour"]["mean"] == pytest.approx(parts["mean"])  # a 1 h horizon
    names = ["mill", "lathe", "wash", "assembly", "test"]
    assert list(result["stations"]) == names
    for values in result["stations"].values():
        assert set(values["parts_out"]) == {"mean"}
        assert set(values["shares"]) == set(REPORTED_STATES)
        assert sum(values["shares"].values()) == pytest.approx(1.0)
    assert result["bottleneck"] in names
    target = result["target"]
    assert target["parts"] == 250 and 0.0 <= target["probability"] <= 1.0
    assert set(target["eta_s"]) == QUANTILE_KEYS
    # 212 made already: 250 needs 38 more in the hour; each replication reaching it has an ETA within it
    for value in target["eta_s"].values():
        assert value is None or 0.0 < value <= 3600.0


def test_a_poisson_line_gives_the_exact_mean_and_target_probability(
    poisson_line: Path, tmp_path: Path
) -> None:
    """One exponential machine (mean 60 s): parts out in T ~ Poisson(T/60), whatever the elapsed time."""
    state = _write(
        tmp_path / "state.json",
        {
            "format": "fabbrica-state/1",
            "stations": {"press": {"machines": [{"state": "working", "elapsed_s": 500}], "produced": 100}},
        },
    )
    n, horizon = 400, 3600.0
    result = _forecast(
        str(poisson_line), "--state", str(state), "--horizon", "1h", "-n", str(n), "--target", "160"
    )
    expected = horizon / 60.0
    tolerance = (
        3.29 * math.sqrt(expected) / math.sqrt(n)
    )  # 99.9 %: the variance of a Poisson count is its mean
    assert abs(result["parts_out"]["mean"] - expected) < tolerance
    # the target counts the 100 made already: 60 more in the hour
    probability = float(stats.poisson(expected).sf(59))
    spread = 3.29 * math.sqrt(probability * (1 - probability) / n)
    assert abs(result["target"]["probability"] - probability) < spread
    # a target already met is reached at once
    met = _forecast(
        str(poisson_line), "--state", str(state), "--horizon", "10min", "-n", "5", "--target", "90"
    )
    assert met["target"]["probability"] == 1.0 and met["target"]["eta_s"]["p90"] == 0.0


def test_common_random_numbers_make_nearby_states_differ_by_the_state(
    poisson_line: Path, tmp_path: Path
) -> None:
    """The same seeds from two states: a buffer of parts more changes the forecast only by those parts."""
    line = _write(
        tmp_path / "two.yaml",
        "name: two\nstations:\n"
        "  - {name: a, cycle_time: {dist: exponential, mean: 60}}\n"
        "  - {name: b, cycle_time: {dist: exponential, mean: 30}, buffer: 10}\n",
    )
    empty = _write(tmp_path / "empty.json", {"format": "fabbrica-state/1"})
    again = _forecast(str(line), "--state", str(empty), "--horizon", "30min", "-n", "20")
    first = _forecast(str(line), "--state", str(empty), "--horizon", "30min", "-n", "20")
    assert again == first
    fuller = _write(
        tmp_path / "fuller.json", {"format": "fabbrica-state/1", "stations": {"b": {"buffer": 5}}}
    )
    more = _forecast(str(line), "--state", str(fuller), "--horizon", "30min", "-n", "20")
    assert more["parts_out"]["mean"] > first["parts_out"]["mean"]


BAD_STATES = [
    ({"format": "fabbrica-state/2"}, "format: unknown format"),
    ({"stations": {}}, "format: required"),
    ({"format": "fabbrica-state/1", "stations": {"drill": {}}}, "stations.drill: unknown station"),
    ({"format": "fabbrica-state/1", "stations": {"lathe": {"buffer": 5}}}, "stations.lathe.buffer: 5 parts"),
    (
        {"format": "fabbrica-state/1", "stations": {"lathe": {"machines": [{"state": "sleeping"}]}}},
        "stations.lathe.machines[0].state",
    ),
    (
        {"format": "fabbrica-state/1", "stations": {"assembly": {"machines": [{"state": "working"}]}}},
        "stations.assembly.machines: 1 machine(s) given, but the station has 2",
    ),
    (
        {
            "format": "fabbrica-state/1",
            "stations": {"lathe": {"machines": [{"state": "working", "elapsed_s": -1}]}},
        },
        "stations.lathe.machines[0].elapsed_s",
    ),
    (
        {"format": "fabbrica-state/1", "stations": {"test": {"machines": [{"state": "blocked"}]}}},
        "stations.test.machines[0].state: the last station is never blocked",
    ),
    (
        {
            "format": "fabbrica-state/1",
            "stations": {"mill": {"machines": [{"state": "working", "product": "C"}]}},
        },
        "stations.mill.machines[0].product: unknown product 'C'",
    ),
    ("{not json", "not valid JSON"),
]


@pytest.mark.parametrize(("content", "named"), BAD_STATES, ids=[named for _, named in BAD_STATES])
def test_a_state_the_line_cannot_hold_is_one_line_and_exit_2(
    tmp_path: Path, content: Any, named: str
) -> None:
    state = _write(tmp_path / "state.json", content)
    done = fabbrica("twin", "forecast", str(DEMONSTRATOR), "--state", str(state), "--horizon", "1h")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"error: {state}: ") and named in lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--horizon", "1h"], "give either --state"),
        (["--horizon", "soon", "--state", "STATE"], "--horizon: not a duration"),
        (["--horizon", "0", "--state", "STATE"], "--horizon: must be > 0"),
        (["--horizon", "1h", "--state", "missing.json"], "missing.json: cannot read"),
        (["--horizon", "1h", "--source", "out/none.duckdb"], "--at: required with --source"),
        (
            ["--horizon", "1h", "--state", "STATE", "--source", "x.duckdb", "--at", "2026-12-02T10:00:00Z"],
            "either",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, options: list[str], named: str) -> None:
    state = _write(tmp_path / "state.json", {"format": "fabbrica-state/1"})
    args = [str(state) if option == "STATE" else option for option in options]
    done = fabbrica("twin", "forecast", str(DEMONSTRATOR), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr and named in lines[0], done.stderr

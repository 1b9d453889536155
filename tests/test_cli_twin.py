"""`fabbrica twin run`: the JSON contract, the table, overrides and exit code 2 on bad input."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMONSTRATOR, run_fabbrica

fabbrica = partial(run_fabbrica, timeout=120)

STATION_KEYS = {
    "working",
    "blocked",
    "starved",
    "down",
    "setup",
    "utilization",
    "oee",
    "availability",
    "performance",
    "quality",
    "parts_out",
}
TOP_KEYS = {
    "throughput_per_hour",
    "parts_out",
    "scrapped",
    "wip_mean",
    "lead_time_mean_s",
    "lead_time_p95_s",
    "bottleneck",
    "stations",
    "horizon_s",
    "warmup_s",
    "seed",
    "events",
    "wall_s",
}


def test_json_contract() -> None:
    done = fabbrica(
        "twin", "run", str(DEMONSTRATOR), "--json", "--horizon", "4h", "--warmup", "30min", "--seed", "5"
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert set(record) >= TOP_KEYS
    assert record["horizon_s"] == 14400.0 and record["warmup_s"] == 1800.0 and record["seed"] == 5
    assert isinstance(record["parts_out"], int) and isinstance(record["events"], int)
    assert record["bottleneck"] in record["stations"]
    for values in record["stations"].values():
        assert set(values) >= STATION_KEYS
        shares = sum(values[s] for s in ("working", "blocked", "starved", "down", "setup"))
        assert shares == pytest.approx(1.0, abs=1e-9)
        assert values["oee"] == pytest.approx(
            values["availability"] * values["performance"] * values["quality"]
        )
    assert record["throughput_per_hour"] == pytest.approx(record["parts_out"] / 3.5)


def test_same_seed_same_bytes_other_seed_other_result() -> None:
    args = ("twin", "run", str(DEMONSTRATOR), "--json", "--horizon", "3h")
    first, second = json.loads(fabbrica(*args).stdout), json.loads(fabbrica(*args).stdout)
    other = json.loads(fabbrica(*args, "--seed", "99").stdout)
    for record in (first, second, other):
        record.pop("wall_s")
    assert json.dumps(first) == json.dumps(second)
    assert other != first


def test_table_output() -> None:
    done = fabbrica("twin", "run", str(DEMONSTRATOR), "--horizon", "2h", "--warmup", "0")
    assert done.returncode == 0, done.stderr
    for word in ("throughput", "bottleneck", "mill", "assembly", "oee"):
        assert word in done.stdout


@pytest.mark.parametrize(
    ("content", "options", "expected"),
    [
        (
            {"stations": [{"name": "a", "cycle_time": 5, "failures": {"mtbf": 10, "mttr": 0}}]},
            [],
            r"line.yaml: stations[0].failures.mttr: must be > 0",
        ),
        (
            {"stations": [{"name": "a", "cycle_time": 5, "speed": 3}]},
            [],
            "line.yaml: stations[0].speed: unknown key",
        ),
        ({"stations": [{"name": "a", "cycle_time": 5}]}, ["--horizon", "soon"], "--horizon: not a duration"),
        (
            {"stations": [{"name": "a", "cycle_time": 5}]},
            ["--warmup", "9h", "--horizon", "1h"],
            "warmup must be shorter than horizon",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    write_line: Any, content: dict[str, Any], options: list[str], expected: str
) -> None:
    path = write_line(content)
    done = fabbrica("twin", "run", str(path), "--json", *options)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert "Traceback" not in done.stderr


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    done = fabbrica("twin", "run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2 and "nope.yaml: file not found" in done.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("stations: [\n")
    done = fabbrica("twin", "run", str(broken))
    assert done.returncode == 2 and "broken.yaml: invalid YAML" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [[], ["twin"], ["twin", "run"]])
def test_help_everywhere(args: list[str]) -> None:
    done = fabbrica(*args, "--help")
    assert done.returncode == 0 and "Usage" in done.stdout

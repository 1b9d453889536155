"""`fabbrica twin advise CONFIG.yaml` on a recorded line: one JSON object, the table, the advice points,
and a bad config in one line with exit code 2.

simulations/lines/released.yaml (a release too fast for its weld) is served for 1 h of line time at
speed 1200 through the virtual PLCs and the connectors into the embedded historian, as `fabbrica demo`
records it; the advice is asked at the end of the recording.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_fabbrica
from twin.advice import LINE_KPIS
from twin.line import load_line
from twinloop.history import open_source

ROOT = Path(__file__).resolve().parents[1]
LINE = ROOT / "simulations/lines/released.yaml"
SPEED = 1200.0
KEYS = {"state_time", "objective", "action", "gain", "candidates", "applied"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The historian of 1 h of the line, and the instant of its last recorded second."""
    from twinloop.demo import stream_line

    out = tmp_path_factory.mktemp("advise-recorded")
    _, _, end, health = asyncio.run(
        stream_line(load_line(LINE), out, speed=SPEED, hours=1.0, mqtt_url=None, sink=None, seed=7)
    )
    assert health["dropped"] == 0 and health["rejected"] == 0
    at = datetime.fromtimestamp(int(end.timestamp()) - 1, end.tzinfo)
    return out / "historian.duckdb", at.isoformat().replace("+00:00", "Z")


def _config(folder: Path, historian: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "line": str(LINE),
        "source": str(historian),
        "speed": SPEED,
        "horizon": "1h",
        "replications": 6,
        "objective": {"minimize": "lead_time_mean_s", "constraints": ["throughput_per_hour >= 150"]},
        "actions": {"release.interarrival.mean": {"relative": [0.0, 0.5], "steps": 3}},
        **changes,
    }
    path = folder / "advise.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_json_is_one_object_with_the_issues_keys_and_the_advice_reaches_the_sink(
    recorded: tuple[Path, str], tmp_path: Path
) -> None:
    historian, at = recorded
    copy = tmp_path / "historian.duckdb"  # the advice points go where the history is read
    copy.write_bytes(historian.read_bytes())
    done = run_fabbrica("twin", "advise", str(_config(tmp_path, copy, at=at)), "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert set(result) >= KEYS
    assert result["state_time"] == at and result["applied"] is False
    assert result["objective"] == "minimize lead_time_mean_s subject to throughput_per_hour >= 150"
    assert set(result["gain"]) == {"mean", "ci95"}
    # doing nothing first, then 17 s x 1.25 and x 1.5 (the setpoint now, from the recorded Release)
    actions = [candidate["action"] for candidate in result["candidates"]]
    assert actions == [{}, {"release.interarrival.mean": 21.25}, {"release.interarrival.mean": 25.5}]
    for candidate in result["candidates"]:
        assert set(candidate["kpis"]) == set(LINE_KPIS)
        assert set(candidate["kpis"]["lead_time_mean_s"]) == {"mean", "ci95"}
    # an hour of a release too fast: slowing it shortens the lead time, significantly
    assert result["action"] == {"release.interarrival.mean": 25.5}
    assert result["gain"]["mean"] - result["gain"]["ci95"] > 0
    assert "advice: 1 points written to embedded" in done.stderr
    frame = open_source(str(copy))("advice", 0, 2**62)
    (row,) = frame.to_dict("records")
    assert row["decision"] == "advised" and row["line"] == "released" and not row["applied"]
    assert json.loads(row["action"]) == {"release.interarrival.mean": 25.5}
    assert row["gain_mean"] == pytest.approx(result["gain"]["mean"])


def test_the_table_names_the_advice_and_where_the_setpoints_came_from(
    recorded: tuple[Path, str], tmp_path: Path
) -> None:
    historian, at = recorded
    copy = tmp_path / "historian.duckdb"
    copy.write_bytes(historian.read_bytes())
    done = run_fabbrica("twin", "advise", str(_config(tmp_path, copy)), "--at", at, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "release.interarrival.mean = 25.5 *" in done.stdout
    assert "setpoints now (history): release.interarrival.mean = 17, release.hold = False" in done.stdout


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": {"minimize": "lead_time"}},
         "objective.minimize: 'lead_time' is not a numeric line KPI"),
        ({"objective": {"minimize": "wip_mean", "maximize": "parts_out"}}, "objective: give one of minimize"),
        ({"objective": {"minimize": "wip_mean", "constraints": ["wip < 3"]}},
         'objective.constraints[0]: must read "KPI <= value" or "KPI >= value"'),
        ({"actions": {"release.conwip": [4, 6]}},
         "actions.release.conwip: the line 'released' has no such setpoint"),
        ({"actions": {"release.interarrival.mean": [17, 90]}},
         "actions.release.interarrival.mean: 90.0 is outside the limits [8.5, 68]"),
        ({"horizon": "soon"}, "horizon:"),
        ({"apply": {"endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "None", "user": "op",
                    "password": "x"}}, "apply.security_policy:"),
        ({"apply": {"endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "Basic256Sha256",
                    "security_mode": "Sign", "user": "op", "password": "x"}}, "apply.security_mode:"),
        ({"apply": {"endpoint": "opc.tcp://127.0.0.1:4840", "security_policy": "Basic256Sha256",
                    "user": "op", "password": "${ADVISE_TEST_UNSET}"}}, "apply.password:"),
    ],
)  # fmt: skip
def test_a_bad_config_is_one_line_naming_file_and_field_exit_2(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    config = _config(tmp_path, tmp_path / "history.duckdb", **changes)
    (tmp_path / "history.duckdb").write_bytes(b"")
    done = run_fabbrica("twin", "advise", str(config), "--json", timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}: ") and message in line, line


def test_apply_needs_an_apply_section(recorded: tuple[Path, str], tmp_path: Path) -> None:
    historian, at = recorded
    done = run_fabbrica("twin", "advise", str(_config(tmp_path, historian, at=at)), "--apply", "--yes")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: --apply: {tmp_path / 'advise.yaml'} has no apply: section (the PLC to write to)"
    )

"""One InfluxDB 1.x holding what the dashboards read: a simulated line run, the twin's results.

The session fixture `dataset` starts the connector test servers (Debian's `influxd` and
Mosquitto, from tests/connectors/conftest.py), serves the demonstrator line at high speed
with `fabbrica line serve` into `fabbrica connect`, and meanwhile runs `fabbrica twin run`
and `fabbrica experiment run` with `--influx-url/--influx-database`; then
`fabbrica twin validate` reads the recorded line back from InfluxDB and writes its
validation there too.

Last, `fabbrica twin live` is replayed on the recorded line (`LiveTwin.tick` at instants inside
it): two shifts of three wall seconds, two forecasts in each, each shift scored at the first
tick after it.

The dashboards read only what the line sent: the per-station state-time counters (TimeWorking
... TimeMaintenance, one per reported state), IdealCycleTime and Occupancy come from the PLCs
through the connector, and the fixture fails when one of them did not arrive.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulations.hardware.runtime import TIME_COUNTERS
from twin.line import load_line
from twinloop.live import LiveTwin
from twinloop.live_config import read_live_config

from ..connectors.conftest import (  # noqa: F401  (fixtures shared with the connector tests)
    FABBRICA,
    ROOT,
    Connector,
    free_port,
    influxdb,
    influxql,
    mosquitto,
)

LINE_FILE = ROOT / "simulations" / "lines" / "demonstrator.yaml"
SPEED = 600
WALL = "10s"
DATABASE = "fabbrica"
CONNECTOR = "grafana-test"
EXPERIMENT = {
    "name": "grafana-mttr",
    "description": "Two repair times at the assembly cell, for the experiments dashboard.",
    "line": str(LINE_FILE),
    "design": {
        "scenarios": [
            {"id": "as-built"},
            {"id": "fast-repair", "stations.assembly.failures.mttr": "5min"},
        ]
    },
    "replications": 3,
    "horizon": "3h",
    "warmup": "30min",
    "seed": 11,
    "kpis": ["throughput_per_hour", "lead_time_mean_s", "wip_mean", "stations.assembly.availability"],
}
# read by the dashboards' OEE, state and WIP panels: a time counter per reported state (TimeWorking
# ... TimeWaitingRepair, TimePlannedStop, TimeOff, TimeMaintenance), as the PLCs publish them
PLC_FIELDS = (*(variable for variable, _ in TIME_COUNTERS), "IdealCycleTime", "Occupancy")


@dataclass
class Dataset:
    url: str
    database: str
    start_ms: int
    end_ms: int
    line: str
    stations: list[str]
    experiment: str
    scenarios: list[str]
    kpis: list[str]
    truth: dict[str, Any]
    folder: Path = Path()


def _run(command: list[str], cwd: Path, timeout: float = 120) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command[2:])}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stderr


def _field_keys(url: str, database: str) -> set[str]:
    return {
        row[0] for item in influxql(url, database, 'SHOW FIELD KEYS FROM "machine"') for row in item["values"]
    }


@pytest.fixture(scope="session")
def dataset(influxdb, mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Dataset:  # noqa: F811
    folder = tmp_path_factory.mktemp("grafana")
    url = influxdb.url
    influx = ["--influx-url", url, "--influx-database", DATABASE]
    opcua_port = free_port()
    config = {
        "name": CONNECTOR,
        "sink": {"type": "influxdb1", "url": url, "database": DATABASE},
        "spool": {"path": "spool/", "fsync": False},
        "health": {"interval": "0.5s"},
        "opcua": [
            {
                "endpoint": f"opc.tcp://127.0.0.1:{opcua_port}",
                "nodes": ["Objects/*/*/*"],
                "sampling_interval": 0,
            }
        ],
        "mqtt": [
            {
                "url": mosquitto.url,
                "client_id": "grafana-test",
                "topics": [{"filter": "factory/+/+/+", "format": "json"}],
            }
        ],
    }
    config_file = folder / "connect.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "experiment.yaml").write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False))
    truth_file = folder / "truth.json"
    began_ms = int(time.time() * 1000)
    line = subprocess.Popen(
        [*FABBRICA, "line", "serve", str(LINE_FILE), "--speed", str(SPEED), "--seed", "3",
         "--opcua", f"opc.tcp://127.0.0.1:{opcua_port}", "--mqtt", mosquitto.url, "--duration", WALL,
         "--truth", str(truth_file)],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    connector = Connector(config_file).start()
    try:
        # the twin's own results, while the line runs
        _run(
            [*FABBRICA, "twin", "run", str(LINE_FILE), "--horizon", "3h", "--warmup", "30min", *influx],
            folder,
        )
        _run(
            [*FABBRICA, "experiment", "run", str(folder / "experiment.yaml"),
             "--out", str(folder / "experiment"), "--workers", "1", *influx],
            folder,
        )  # fmt: skip
        output, _ = line.communicate(timeout=120)
        assert line.returncode == 0, output.decode()[-3000:]
        time.sleep(1.5)  # the connector's last health point and flush
    finally:
        if line.poll() is None:
            line.kill()
        code = connector.stop()
    assert code == 0, connector.output()[-3000:]
    truth = json.loads(truth_file.read_text())
    missing = [name for name in PLC_FIELDS if name not in _field_keys(url, DATABASE)]
    assert not missing, f"the PLCs' {missing} did not reach InfluxDB"
    _run(
        [*FABBRICA, "twin", "validate", str(LINE_FILE), "--source", f"{url}/{DATABASE}",
         "--replications", "3", *influx],
        folder,
    )  # fmt: skip
    _live_twin(url, folder)
    line_model = load_line(LINE_FILE)
    return Dataset(
        url=url,
        database=DATABASE,
        start_ms=began_ms - 60_000,
        end_ms=int(time.time() * 1000) + 60_000,
        line=line_model.name,
        stations=[station.name for station in line_model.stations],
        experiment=str(EXPERIMENT["name"]),
        scenarios=[scenario["id"] for scenario in EXPERIMENT["design"]["scenarios"]],  # type: ignore[index]
        kpis=list(EXPERIMENT["kpis"]),  # type: ignore[arg-type]
        truth=truth,
        folder=folder,
    )


def _live_twin(url: str, folder: Path) -> None:
    """Three ticks of the live twin replayed on the recording, into the same database."""
    first_ns = influxql(url, DATABASE, 'SELECT first("State") FROM "machine"')[0]["values"][0][0]
    early = datetime.fromtimestamp(math.ceil(first_ns / 1e9) + 1, UTC)
    late = early + timedelta(seconds=3)
    shifts = [
        {"name": "early", "start": f"{early:%H:%M:%S}", "end": f"{late:%H:%M:%S}", "target": 8},
        {
            "name": "late",
            "start": f"{late:%H:%M:%S}",
            "end": f"{late + timedelta(seconds=3):%H:%M:%S}",
            "target": 8,
        },
    ]
    config = {
        "line": str(LINE_FILE),
        "source": {"type": "influxdb1", "url": url, "database": DATABASE},
        "replications": 10,
        "speed": SPEED,
        "shifts": shifts,
        "fan_step": "1s",
        "stale_after": "5s",
        "score_delay": "0.2s",
        "state_file": str(folder / "live-state.json"),
    }
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    twin = LiveTwin(read_live_config(path))

    async def ticks() -> list[Any]:
        try:
            return [
                await twin.tick(at)
                for at in (early + timedelta(seconds=s) for s in (0.5, 1.5, 3.5, 4.5, 6.5))
            ]
        finally:
            await twin.close()

    done = asyncio.run(ticks())
    assert [tick.status for tick in done] == ["written"] * 4 + ["idle"], [tick.message for tick in done]
    assert done[2].scored and done[4].scored, "a shift was not scored"

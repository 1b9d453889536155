"""A line recorded into InfluxDB 1.x, for the live twin's tests to forecast.

The session fixture `recording` serves a small line (`fabbrica line serve` at speed 600: ten
line minutes per wall second) into `fabbrica connect`, which writes the PLCs' values and the
part events into Debian's InfluxDB (tests/connectors/conftest.py starts it and Mosquitto).
The tests replay ticks of the live twin on that history, at instants inside it (`--at`, or a
clock of their own), with shifts of a few wall seconds: `Recording.shifts` gives two (A, B),
on whole seconds, that lie inside the recording.
"""

from __future__ import annotations

import math
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..connectors.conftest import (  # noqa: F401  (fixtures shared with the connector tests)
    FABBRICA,
    Connector,
    free_port,
    influxdb,
    influxql,
    mosquitto,
)

SPEED = 600
WALL_S = 6
RECORDED = "recorded"  # the line's history
LINE: dict[str, Any] = {  # three stations, a part every ~22 line seconds: ~27 parts per wall second at 600
    "name": "pilot",
    "release": "saturated",
    "seed": 5,
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "lognormal", "mean": 20, "cv": 0.2},
         "failures": {"mtbf": "10min", "mttr": 40}},
        {"name": "weld", "cycle_time": {"dist": "gamma", "mean": 18, "cv": 0.3}, "buffer": 2},
        {"name": "pack", "cycle_time": {"dist": "uniform", "low": 15, "high": 25}, "buffer": 3,
         "failures": {"mtbf": "15min", "mttr": 30}},
    ],
}  # fmt: skip


@dataclass
class Shift:
    name: str
    start: datetime
    end: datetime
    target: int

    def entry(self) -> dict[str, Any]:
        """The shift as a `shifts:` entry of the config (times of day, UTC)."""
        return {"name": self.name, "start": f"{self.start:%H:%M:%S}", "end": f"{self.end:%H:%M:%S}",
                "target": self.target}  # fmt: skip


@dataclass
class Recording:
    url: str
    line_file: Path
    began: datetime  # the line's first recorded value
    ended: datetime  # its last

    @property
    def shifts(self) -> list[Shift]:
        """Two shifts of 2 wall seconds (20 line minutes, ~55 parts) inside the recording."""
        first = datetime.fromtimestamp(math.ceil(self.began.timestamp()) + 1, UTC)
        second = first + timedelta(seconds=2)
        return [
            Shift("A", first, second, 50),
            Shift("B", second, second + timedelta(seconds=2), 50),
        ]

    def produced(self, at: datetime) -> int:
        """The exit station's PartsProduced counter at `at`, read straight from InfluxDB."""
        found = influxql(
            self.url,
            RECORDED,
            'SELECT last("PartsProduced") FROM "machine" WHERE "station" = \'pack\' '
            f"AND time <= {int(at.timestamp() * 1e9)}",
        )
        return int(found[0]["values"][0][1]) if found else 0

    def config(self, folder: Path, sink: str | dict[str, Any] = "replayed", **changes: Any) -> Path:
        """A live twin config reading the recording, written to `folder` (keys as in live-sample.yaml);
        `sink`: a database of the recording's InfluxDB, or a sink section."""
        data: dict[str, Any] = {
            "line": str(self.line_file),
            "source": {"type": "influxdb1", "url": self.url, "database": RECORDED},
            "sink": {"type": "influxdb1", "url": self.url, "database": sink}
            if isinstance(sink, str)
            else sink,
            "every": "1s",
            "replications": 20,
            "speed": SPEED,
            "shifts": [shift.entry() for shift in self.shifts],
            "fan_step": "0.5s",
            "stale_after": "2s",
            "score_delay": "0.3s",
            "state_file": str(folder / "live-state.json"),
            **changes,
        }
        path = folder / "live.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@pytest.fixture(scope="session")
def recording(influxdb, mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Recording:  # noqa: F811
    folder = tmp_path_factory.mktemp("live-recording")
    line_file = folder / "pilot.yaml"
    line_file.write_text(yaml.safe_dump(LINE, sort_keys=False))
    opcua_port = free_port()
    config = {
        "name": "live-test",
        "sink": {"type": "influxdb1", "url": influxdb.url, "database": RECORDED, "flush_interval": "0.2s"},
        "spool": {"path": "spool/", "fsync": False},
        "opcua": [{"endpoint": f"opc.tcp://127.0.0.1:{opcua_port}", "nodes": ["Objects/*/*/*"],
                   "sampling_interval": 0}],
        "mqtt": [{"url": mosquitto.url, "client_id": "live-test",
                  "topics": [{"filter": "factory/+/+/+", "format": "json"}]}],
    }  # fmt: skip
    config_file = folder / "connect.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    connector = Connector(config_file).start()
    try:
        done = subprocess.run(
            [*FABBRICA, "line", "serve", str(line_file), "--speed", str(SPEED), "--seed", "3",
             "--opcua", f"opc.tcp://127.0.0.1:{opcua_port}", "--mqtt", mosquitto.url,
             "--duration", f"{WALL_S}s"],
            cwd=folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        threading.Event().wait(1.0)  # the connector's last flush
    finally:
        code = connector.stop()
    assert code == 0, connector.output()[-3000:]
    begun, ended = (
        influxql(influxdb.url, RECORDED, f'SELECT {which}("State") FROM "machine"')[0]["values"][0][0]
        for which in ("first", "last")
    )
    return Recording(
        url=influxdb.url,
        line_file=line_file,
        began=datetime.fromtimestamp(begun / 1e9, UTC),
        ended=datetime.fromtimestamp(ended / 1e9, UTC),
    )

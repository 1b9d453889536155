"""Real servers for the connector tests, started once per session on free loopback ports.

Mosquitto, InfluxDB 1.x (`influxd` from Debian's `influxdb` package) and VictoriaMetrics
(`victoria-metrics`, an independent server with InfluxDB's v2 write API) each run with a
config and data folder of their own in a temporary directory. A missing binary skips the
tests that need it, except under CI=true, where it fails them (tests/ci.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testing.servers import Service, free_port

from ..ci import missing
from .manual_plc import ManualServer

ROOT = Path(__file__).resolve().parents[2]
FABBRICA = [sys.executable, "-c", "from fabbrica.cli import main; main()"]
HERE = Path(__file__).resolve().parent


def find_binary(name: str, *extra: str) -> str:
    for candidate in (name, *extra):
        found = shutil.which(candidate) or (candidate if os.path.exists(candidate) else None)
        if found:
            return found
    missing(f"{name} (bash scripts/install-system-packages.sh installs it)")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
    folder = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    # As root, mosquitto would switch to user `mosquitto`, who cannot write in pytest's private
    # temporary folders: the persisted sessions (needed across a broker restart) would be lost.
    user = "user root\n" if os.geteuid() == 0 else ""
    (folder / "mosquitto.conf").write_text(
        user + f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        "max_queued_messages 200000\n"
        "max_inflight_messages 0\n"
        "log_dest stdout\n"
        "log_type error\n"
        "log_type warning\n"
    )
    service = Service("mosquitto", [binary, "-c", str(folder / "mosquitto.conf")], port, folder)
    service.start()
    service.url = f"mqtt://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield service
    service.stop()


def influxd_service(folder: Path, *, auth: bool = False, log: bool = False) -> Service:
    """Debian's InfluxDB 1.x on a free loopback port with its config and data in `folder` (not started)."""
    binary = find_binary("influxd", "/usr/bin/influxd")
    folder.mkdir(parents=True, exist_ok=True)
    port, rpc = free_port(), free_port()
    (folder / "influxdb.conf").write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{folder}/meta"
  logging-enabled = {str(log).lower()}
[data]
  dir = "{folder}/data"
  wal-dir = "{folder}/wal"
  query-log-enabled = {str(log).lower()}
[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {str(auth).lower()}
  log-enabled = {str(log).lower()}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""
    )
    service = Service("influxd", [binary, "run", "-config", str(folder / "influxdb.conf")], port, folder)
    service.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return service


def influx_ping(url: str) -> bool:
    """Whether the InfluxDB at `url` answers /ping."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = influxd_service(tmp_path_factory.mktemp("influxdb"))
    service.start()
    _wait_http(f"{service.url}/ping")  # type: ignore[attr-defined]
    yield service
    service.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    binary = find_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    folder = tmp_path_factory.mktemp("victoria")
    port = free_port()
    command = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={folder}/data",
        "-loggerLevel=ERROR",
        "-retentionPeriod=100y",
        "-dedup.minScrapeInterval=1ms",  # same series and timestamp: one sample, as in InfluxDB
    ]
    service = Service("victoria-metrics", command, port, folder)
    service.start()
    service.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    _wait_http(f"{service.url}/health")  # type: ignore[attr-defined]
    yield service
    service.stop()


def _wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def influxql(url: str, database: str, query: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"db": database, "q": query, "epoch": "ns"})
    with urllib.request.urlopen(f"{url}/query?{params}", timeout=10) as answer:
        payload = json.load(answer)
    series: list[dict[str, Any]] = []
    for result in payload["results"]:
        assert "error" not in result, result
        series.extend(result.get("series", []))
    return series


def influx_rows(url: str, database: str, measurement: str, where: str = "") -> list[dict[str, Any]]:
    """Every row of a measurement as dicts (tags included)."""
    clause = f" WHERE {where}" if where else ""
    rows = []
    for item in influxql(url, database, f'SELECT * FROM "{measurement}"{clause} GROUP BY *'):
        for values in item["values"]:
            row = dict(zip(item["columns"], values, strict=True))
            row.update(item.get("tags") or {})
            rows.append(row)
    return rows


def victoria_export(url: str, match: str) -> list[dict[str, Any]]:
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).close()
    params = urllib.parse.urlencode({"match[]": match, "start": "0"})
    with urllib.request.urlopen(f"{url}/api/v1/export?{params}", timeout=10) as answer:
        return [json.loads(line) for line in answer.read().decode().splitlines() if line.strip()]


class Connector:
    """`fabbrica connect CONFIG.yaml` as a child process."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "connector.log"

    def start(self, *extra: str) -> Connector:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*FABBRICA, "-v", "connect", str(self.config), *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
                env=self.env,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(data: dict[str, Any], name: str = "connect.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def connector_factory() -> Iterator[Callable[..., Connector]]:
    started: list[Connector] = []

    def make(config: Path, env: dict[str, str] | None = None) -> Connector:
        connector = Connector(config, env)
        started.append(connector)
        return connector

    yield make
    for connector in started:
        if connector.process is not None and connector.process.poll() is None:
            connector.process.kill()
            connector.process.wait()


@pytest.fixture
def opcua_server(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start the test PLC (tests/connectors/opcua_server.py) on a free port; restartable."""
    services: list[Service] = []

    def start(
        period: float = 0.1, truth: Path | None = None, env_extra: dict[str, str] | None = None
    ) -> Service:
        port = free_port()
        env = {**os.environ, **(env_extra or {})}
        if truth is not None:
            env["TRUTH_FILE"] = str(truth)
        command = [sys.executable, str(HERE / "opcua_server.py"), str(port), str(period)]
        service = Service(f"opcua-{port}", command, port, tmp_path, env)
        service.start()
        service.url = f"opc.tcp://127.0.0.1:{port}/"  # type: ignore[attr-defined]
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop(signal.SIGKILL)


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


class Publisher:
    """A paho client publishing numbered sensor messages with QoS 1 (resent after a broker restart)."""

    def __init__(self, port: int, client_id: str = "test-publisher") -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(0.1, 1)
        self.acked: set[int] = set()
        self.client.on_publish = lambda client, userdata, mid, reason, properties: self.acked.add(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.infos: list[Any] = []
        self.base_s = time.time() - 3600

    def sensor(self, index: int, line: str = "L1") -> None:
        payload = json.dumps({"ts": self.base_s + index / 1000, "value": float(index), "unit": "kWh"})
        self.publish(f"factory/{line}/S{index % 3}/energy", payload)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=qos))

    def many(self, start: int, count: int, rate: float = 2000.0, line: str = "L1") -> None:
        began = time.monotonic()
        for index in range(start, start + count):
            self.sensor(index, line)
            ahead = (index - start + 1) / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)

    def close(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while any(info.mid not in self.acked for info in self.infos) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(info.mid in self.acked for info in self.infos), "broker did not acknowledge every message"
        self.client.loop_stop()
        self.client.disconnect()


def sensor_values(url: str, database: str, line: str = "L1") -> list[float]:
    """Every stored `sensor` value of a line (one per stored point)."""
    return sorted(row["value"] for row in influx_rows(url, database, "sensor", f"\"line\" = '{line}'"))


@pytest.fixture
def manual_server(tmp_path: Path) -> Iterator[ManualServer]:
    """The test PLC in manual mode: the test writes each value with its timestamps."""
    server = ManualServer(tmp_path)
    yield server
    server.close()

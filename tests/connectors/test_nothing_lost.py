"""Nothing lost, nothing twice: the database down during a run, kill -9 of the connector while
the database is down, and the simulated line (`fabbrica line serve --truth`) end to end into
InfluxDB 1.x and VictoriaMetrics, compared with its ground truth."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

from .conftest import (
    FABBRICA,
    ROOT,
    Publisher,
    free_port,
    influx_rows,
    sensor_values,
    victoria_export,
    wait_until,
)


def _mqtt_config(mosquitto, sink):
    return {
        "name": "faults",
        "sink": sink,
        "spool": {"path": "spool", "max_bytes": "64MB"},
        "mqtt": [
            {
                "url": mosquitto.url,
                "client_id": f"conn-{uuid.uuid4().hex[:8]}",
                "topics": [{"filter": "factory/+/+/+", "format": "json"}],
            }
        ],
    }


def _spooled_lines(folder: Path) -> int:
    return sum(file.read_bytes().count(b"\n") for file in (folder / "spool" / "segments").glob("*.lp"))


def test_database_down_spools_and_replays_in_order(mosquitto, influxdb, write_config, connector_factory):
    database = f"down_{uuid.uuid4().hex[:6]}"
    sink = {
        "type": "influxdb1",
        "url": influxdb.url,
        "database": database,
        "flush_interval": "0.2s",
        "retry_max": "1s",
    }
    path = write_config(_mqtt_config(mosquitto, sink))
    connector = connector_factory(path).start()
    wait_until(lambda: "connected as" in connector.output())
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    publisher.many(0, 200)
    wait_until(lambda: len(sensor_values(influxdb.url, database)) == 200)
    influxdb.stop()
    try:
        publisher.many(200, 1000, rate=3000)
        publisher.close()
        wait_until(lambda: "unavailable, spooling" in connector.output())
    finally:
        influxdb.start()
    wait_until(lambda: len(sensor_values(influxdb.url, database)) >= 1200, timeout=40)
    wait_until(lambda: "is back; replaying" in connector.output())
    assert connector.stop() == 0
    assert sensor_values(influxdb.url, database) == [float(index) for index in range(1200)]
    health = influx_rows(influxdb.url, database, "connector_health")
    assert health[-1]["dropped"] == 0 and health[-1]["spooled"] == 0


def test_kill_9_while_the_database_is_down(mosquitto, influxdb, write_config, connector_factory):
    database = f"killdown_{uuid.uuid4().hex[:6]}"
    sink = {
        "type": "influxdb1",
        "url": influxdb.url,
        "database": database,
        "flush_interval": "0.2s",
        "retry_max": "1s",
    }
    path = write_config(_mqtt_config(mosquitto, sink))
    connector = connector_factory(path).start()
    wait_until(lambda: "connected as" in connector.output())
    influxdb.stop()
    try:
        publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
        publisher.many(0, 1000, rate=3000)
        publisher.close()
        wait_until(lambda: _spooled_lines(path.parent) >= 1000)  # acknowledged only once spooled
        connector.kill()
    finally:
        influxdb.start()
    connector.start()
    wait_until(lambda: len(sensor_values(influxdb.url, database)) >= 1000, timeout=40)
    assert connector.stop() == 0
    assert sensor_values(influxdb.url, database) == [float(index) for index in range(1000)]


def _iso_ns(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.replace(microsecond=0).timestamp()) * 10**9 + moment.microsecond * 1000


def test_simulated_line_end_to_end_matches_its_truth(
    mosquitto, influxdb, victoria, write_config, connector_factory, tmp_path
):
    """One served run, two connectors: into InfluxDB 1.x and into VictoriaMetrics (v2 write API)."""
    opcua_port = free_port()
    database = f"line_{uuid.uuid4().hex[:6]}"
    sinks = {
        "influxdb1": {
            "type": "influxdb1",
            "url": influxdb.url,
            "database": database,
            "flush_interval": "0.3s",
        },
        "influxdb2": {"type": "influxdb2", "url": victoria.url, "token": "t", "org": "o", "bucket": database},
    }
    connectors = []
    for kind, sink in sinks.items():
        config = {
            "name": f"e2e-{kind}",
            "sink": sink,
            "spool": {"path": f"spool-{kind}/", "max_bytes": "1GB"},
            "opcua": [
                {
                    "endpoint": f"opc.tcp://127.0.0.1:{opcua_port}",
                    "nodes": ["Objects/*/*/*"],
                    "sampling_interval": "100ms",
                }
            ],
            "mqtt": [
                {
                    "url": mosquitto.url,
                    "client_id": f"e2e-{kind}-{database}",
                    "topics": [{"filter": "factory/+/+/+", "format": "json"}],
                }
            ],
        }
        connectors.append(connector_factory(write_config(config, f"{kind}.yaml")))
    truth_file = tmp_path / "truth.json"
    line = subprocess.Popen(
        [*FABBRICA, "line", "serve", str(ROOT / "simulations/lines/demonstrator.yaml"), "--speed", "60",
         "--opcua", f"opc.tcp://127.0.0.1:{opcua_port}", "--mqtt", mosquitto.url, "--duration", "8s",
         "--truth", str(truth_file), "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    for connector in connectors:
        connector.log = tmp_path / f"{connector.config.stem}.log"
        connector.start()
    output, _ = line.communicate(timeout=90)
    assert line.returncode == 0, output.decode()[-2000:]
    time.sleep(1.5)
    for connector in connectors:
        assert connector.stop() == 0
    truth = json.loads(truth_file.read_text())
    assert truth["stations"]
    for sink_kind in sinks:
        for station, record in truth["stations"].items():
            _compare(sink_kind, influxdb if sink_kind == "influxdb1" else victoria, database, station, record)


def _compare(sink_kind: str, server, database: str, station: str, record: dict) -> None:
    expected = {(_iso_ns(item["ts"]), item["value"]) for item in record["values"]["PartsProduced"]}
    if sink_kind == "influxdb1":
        rows = influx_rows(server.url, database, "machine", f"\"station\" = '{station}'")
        stored = {(row["time"], row["PartsProduced"]) for row in rows if row.get("PartsProduced") is not None}
        sensor_rows = influx_rows(server.url, database, "sensor", f"\"station\" = '{station}'")
        messages = Counter(row["sensor"] for row in sensor_rows)
        parts = influx_rows(server.url, database, "part", f"\"station\" = '{station}'")
        assert len(parts) == len(record["parts"]), f"{station}: part events"
        assert sorted(row["cycle_time_s"] for row in parts) == sorted(
            p["cycle_time_s"] for p in record["parts"]
        )
    else:
        series = victoria_export(server.url, f'{{__name__="machine_PartsProduced",station="{station}"}}')
        stored = {
            (stamp * 10**6, value)
            for item in series
            for stamp, value in zip(item["timestamps"], item["values"], strict=True)
        }
        expected = {(stamp // 10**6 * 10**6, value) for stamp, value in expected}
        messages = Counter()
        for item in victoria_export(server.url, f'{{__name__="sensor_value",station="{station}"}}'):
            messages[item["metric"]["sensor"]] += len(item["values"])
    assert stored, f"{sink_kind} {station}: no PartsProduced stored"
    # The initial value the PLC shows before the first part may predate the subscription.
    assert expected - stored <= {min(expected)}, (
        f"{sink_kind} {station}: missing {sorted(expected - stored)[:5]}"
    )
    for topic, counts in record.get("messages", {}).items():
        if topic != "events":
            assert messages[topic] == counts["published"], f"{sink_kind} {station}/{topic}"

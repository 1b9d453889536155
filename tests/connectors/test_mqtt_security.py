"""The MQTT source over TLS with a password: `fabbrica connect` against a Mosquitto that only
speaks TLS (certificate from a CA the test makes), wants a password and applies an ACL.

The CA file, user and password reach the config through `${ENV}`. A CA that did not sign the
broker's certificate, and a wrong password, are logged clearly and retried; the connector
neither crashes nor gives up, and stops cleanly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.sinks.embedded import Historian
from tests.hardware.conftest import Mosquitto, _broker_certificates, _mosquitto_binary

from .conftest import wait_until
from .mqtt_peers import Client

ACL = """user connector
topic read factory/#

user sensor
topic write factory/#
"""


@dataclass
class TlsBroker:
    broker: Mosquitto
    ca_file: Path
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.broker.port}"

    def log(self) -> str:
        path = self.broker.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    binary = _mosquitto_binary()
    folder = tmp_path_factory.mktemp("tls-broker")
    ca_file, cert_file, key_file = _broker_certificates(folder)
    passwords = {user: f"{user}-{uuid.uuid4().hex}" for user in ("connector", "sensor")}
    password_file = folder / "passwd"
    mosquitto_passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    for index, (user, password) in enumerate(passwords.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run([mosquitto_passwd, *create, "-b", str(password_file), user, password], check=True)
    (folder / "acl").write_text(ACL)
    settings = (
        "allow_anonymous false",
        f"password_file {password_file}",
        f"acl_file {folder / 'acl'}",
        f"cafile {ca_file}",
        f"certfile {cert_file}",
        f"keyfile {key_file}",
        "log_type all",
    )
    server = Mosquitto(binary, folder, settings)
    server.start()
    yield TlsBroker(server, ca_file, passwords)
    server.stop()


def _config(tls_broker: TlsBroker, **extra: object) -> dict[str, object]:
    return {
        "name": "tls",
        "sink": {"type": "embedded", "path": "h.duckdb"},
        "spool": {"path": "spool"},
        "mqtt": [
            {
                "url": tls_broker.url,
                "client_id": f"tls-{uuid.uuid4().hex[:8]}",
                "ca_file": "${MQTT_CA_FILE}",
                "username": "${MQTT_USER}",
                "password": "${MQTT_PASSWORD}",
                "reconnect_max": "1s",
                "topics": [{"filter": "factory/+/+/+", "format": "json"}],
                **extra,
            }
        ],
    }


def _env(tls_broker: TlsBroker, **override: str) -> dict[str, str]:
    env = {
        "MQTT_CA_FILE": str(tls_broker.ca_file),
        "MQTT_USER": "connector",
        "MQTT_PASSWORD": tls_broker.passwords["connector"],
    }
    return {**env, **override}


def _sensor(tls_broker: TlsBroker) -> Client:
    client = Client("sensor", tls_broker.passwords["sensor"], ca_file=tls_broker.ca_file)
    assert client.connect(tls_broker.broker.port) == "ok"
    return client


def test_connector_reads_over_tls_with_ca_file_and_password_from_the_environment(
    tls_broker: TlsBroker, write_config, connector_factory, tmp_path: Path
) -> None:
    connector = connector_factory(write_config(_config(tls_broker)), _env(tls_broker)).start()
    wait_until(lambda: "connected as" in connector.output(), timeout=30)
    sensor = _sensor(tls_broker)
    now = time.time()
    for index in range(5):
        payload = json.dumps({"ts": now + index / 1000, "value": float(index), "unit": "kWh"})
        sensor.publish("factory/L1/Press/energy", payload)
    sensor.publish("factory/L1/Press/events", json.dumps({"ts": now, "product": "A", "cycle_time_s": 9.5}))
    sensor.close()
    # the last message has been handed to the broker; give the connector a moment to spool it
    time.sleep(1.0)
    assert connector.stop() == 0
    output = connector.output()
    assert tls_broker.passwords["connector"] not in output
    historian = Historian(tmp_path / "h.duckdb", read_only=True)
    sensor_rows = historian.query("sensor")
    assert sorted(sensor_rows["value"]) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert set(sensor_rows["unit"]) == {"kWh"} and set(sensor_rows["station"]) == {"Press"}
    assert historian.query("part")["cycle_time_s"].tolist() == [9.5]


def _attempts(tls_broker: TlsBroker, marker: str) -> int:
    return tls_broker.log().count(marker)


def test_a_ca_that_did_not_sign_the_broker_is_a_clear_tls_error_and_retried(
    tls_broker: TlsBroker, write_config, connector_factory, tmp_path: Path
) -> None:
    stranger = tmp_path / "other-ca"
    stranger.mkdir()
    other_ca, _, _ = _broker_certificates(stranger)
    before = _attempts(tls_broker, "OpenSSL Error")
    env = _env(tls_broker, MQTT_CA_FILE=str(other_ca))
    connector = connector_factory(write_config(_config(tls_broker)), env).start()
    # the broker sees the handshakes fail again and again: the connector retries
    wait_until(lambda: _attempts(tls_broker, "OpenSSL Error") >= before + 3, timeout=30)
    assert connector.process is not None and connector.process.poll() is None, connector.output()
    output = connector.output()
    assert f"TLS: the broker's certificate is not trusted by ca_file {other_ca}" in output, output
    assert "Traceback" not in output and "connected as" not in output
    assert connector.stop() == 0


def test_a_wrong_password_is_refused_logged_and_retried(
    tls_broker: TlsBroker, write_config, connector_factory
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    before = _attempts(tls_broker, "disconnected, not authorised")
    env = _env(tls_broker, MQTT_PASSWORD=wrong)
    connector = connector_factory(write_config(_config(tls_broker)), env).start()
    # refused again and again: the connector retries
    wait_until(lambda: _attempts(tls_broker, "disconnected, not authorised") >= before + 3, timeout=30)
    assert connector.process is not None and connector.process.poll() is None, connector.output()
    output = connector.output()
    assert "connection refused by the broker" in output and "(check username and password)" in output, output
    assert wrong not in output and "Traceback" not in output
    assert connector.stop() == 0


def test_a_relative_ca_file_is_found_beside_the_config_whatever_the_working_directory(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    import os
    import signal
    import sys

    import yaml

    folder = tmp_path / "conf"
    folder.mkdir()
    shutil.copy(tls_broker.ca_file, folder / "broker-ca.pem")
    data = _config(tls_broker)
    data["mqtt"][0]["ca_file"] = "broker-ca.pem"  # type: ignore[index]
    config = folder / "connect.yaml"
    config.write_text(yaml.safe_dump(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "relative.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from fabbrica.cli import main; main()", "-v", "connect", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=elsewhere,
            env={**os.environ, **_env(tls_broker)},
        )
    try:
        wait_until(lambda: "connected as" in log.read_text() or process.poll() is not None, timeout=30)
        assert "connected as" in log.read_text(), log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0

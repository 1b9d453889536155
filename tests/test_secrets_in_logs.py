"""No secret in any log, output or written file, after a full run with secrets everywhere.

The shipped Mosquitto (passwords from its entrypoint.sh, ACL, TLS listener), InfluxDB 1.x with
authentication, `fabbrica line serve` with an OPC UA user in its hardware file and its MQTT
password from the environment (in the --mqtt URL, as docker-compose.yml passes it), and
`fabbrica connect` reading both (MQTT over TLS) into InfluxDB, every secret from `${ENV}`.
Both commands log at DEBUG (no --log-level option exists: a wrapper configures the root logger
before the command line runs), and the connector runs once with wrong passwords first. Then
every file under the run's folder is searched for every secret, as is and encoded (URL
quoting, HTTP basic auth), except the files whose job is to hold them: the broker's password
file (hashed) and the line's hardware file (the OPC UA user's password, which hardware files
take only in clear).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.connectors.conftest import Service, free_port, influx_ping, influxd_service, wait_until
from tests.connectors.mqtt_peers import ShippedBroker, start_shipped_broker
from tests.hardware.conftest import FAST_LINE

DEBUG = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, "
    "format='%(asctime)s %(levelname)s %(name)s: %(message)s'); "
    "from fabbrica.cli import main; main()"
)
INFLUX_USER, OPCUA_USER = "admin", "operator"


def _secret(name: str) -> str:
    return f"Zq{name}{secrets.token_hex(10)}"


@pytest.fixture
def run(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The servers of the run; every process the test starts is stopped at the end."""
    passwords = {name: _secret(name) for name in ("line", "connector", "probe")}
    state: dict[str, Any] = {
        "folder": tmp_path,
        "secrets": {
            **{f"mqtt_{name}": value for name, value in passwords.items()},
            "opcua": _secret("opcua"),
            "influx": _secret("influx"),
            "wrong": _secret("wrong"),
        },
        "processes": [],
    }
    broker = start_shipped_broker(tmp_path / "mosquitto", passwords)
    influx = _influxd(tmp_path / "influxdb", state["secrets"]["influx"])
    state.update(broker=broker, influx=influx)
    try:
        yield state
    finally:
        for process in state["processes"]:
            if process.poll() is None:
                process.kill()
                process.wait()
        broker.stop()
        influx.stop()


def _influxd(folder: Path, password: str) -> Service:
    service = influxd_service(folder, auth=True, log=True)
    service.start()
    wait_until(lambda: influx_ping(service.url), timeout=20)  # type: ignore[attr-defined]
    # the first user may be created without credentials; the statement goes in the body, not the URL
    _query(service.url, f"CREATE USER {INFLUX_USER} WITH PASSWORD '{password}' WITH ALL PRIVILEGES", None)  # type: ignore[attr-defined]
    return service


def _query(url: str, statement: str, password: str | None, database: str = "") -> dict[str, Any]:
    body = urllib.parse.urlencode({"q": statement, "db": database}).encode()
    request = urllib.request.Request(f"{url}/query", data=body)
    if password is not None:
        token = base64.b64encode(f"{INFLUX_USER}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _count(run: dict[str, Any], measurement: str) -> int:
    answer = _query(
        run["influx"].url, f'SELECT count(*) FROM "{measurement}"', run["secrets"]["influx"], "plant"
    )
    series = answer["results"][0].get("series") or []
    return max((value for value in series[0]["values"][0][1:] if value), default=0) if series else 0


def _start(run: dict[str, Any], name: str, command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A shell command (so that secrets travel as environment variables, as in the compose file)."""
    log = run["folder"] / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=run["folder"],
            env={**os.environ, "PYTHONUNBUFFERED": "1", "XDG_DATA_HOME": str(run["folder"] / "xdg"), **env},
        )
    run["processes"].append(process)
    return process


def _log(run: dict[str, Any], name: str) -> str:
    path = run["folder"] / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _connector_config(run: dict[str, Any], opcua: str) -> Path:
    broker: ShippedBroker = run["broker"]
    config = {
        "name": "secrets",
        "sink": {
            "type": "influxdb1",
            "url": run["influx"].url,
            "database": "plant",
            "username": INFLUX_USER,
            "password": "${INFLUX_PASSWORD}",
        },
        "spool": {"path": "spool"},
        "health": {"interval": "1s"},
        "opcua": [
            {
                "endpoint": opcua,
                "nodes": ["Objects/*/*/*"],
                "username": OPCUA_USER,
                "password": "${OPCUA_PASSWORD}",
                "reconnect_max": "1s",
            }
        ],
        "mqtt": [
            {
                "url": f"mqtts://127.0.0.1:{broker.tls_port}",
                "ca_file": str(broker.ca_file),
                "client_id": "secrets-connector",
                "username": "connector",
                "password": "${MQTT_CONNECTOR_PASSWORD}",
                "reconnect_max": "1s",
                "topics": [{"filter": "factory/+/+/+", "format": "json"}],
            }
        ],
    }
    folder = run["folder"] / "connector"
    folder.mkdir(exist_ok=True)
    path = folder / "connect.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=60)


def _variants(secret: str, users: list[str]) -> set[str]:
    found = {secret, urllib.parse.quote(secret, safe="")}
    for user in users:
        found.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return found


def test_a_full_run_leaves_no_secret_in_any_log_or_file(run: dict[str, Any]) -> None:
    folder: Path = run["folder"]
    secret = run["secrets"]
    broker: ShippedBroker = run["broker"]
    opcua = f"opc.tcp://127.0.0.1:{free_port()}"

    hardware = folder / "hardware.yaml"
    hardware.write_text(
        yaml.safe_dump(
            {
                "opcua": {
                    "security": {"pki_dir": str(folder / "pki"), "users": {OPCUA_USER: secret["opcua"]}}
                },
                "mqtt": {"username": "line"},
            }
        )
    )
    line_file = folder / "line.yaml"
    line_file.write_text(yaml.safe_dump(FAST_LINE))
    line = _start(
        run,
        "line",
        f'exec {sys.executable} -c "{DEBUG}" -v line serve {line_file} --speed 50 --opcua {opcua} '
        f'--mqtt "mqtt://line:$MQTT_LINE_PASSWORD@127.0.0.1:{broker.port}" --hardware {hardware} '
        f"--truth {folder / 'truth.json'}",
        {"MQTT_LINE_PASSWORD": secret["mqtt_line"]},
    )
    wait_until(lambda: "serving line" in _log(run, "line") or line.poll() is not None, timeout=120)
    assert line.poll() is None, _log(run, "line")[-3000:]

    config = _connector_config(run, opcua)
    command = f'exec {sys.executable} -c "{DEBUG}" -v connect {config}'
    right = {
        "MQTT_CONNECTOR_PASSWORD": secret["mqtt_connector"],
        "OPCUA_PASSWORD": secret["opcua"],
        "INFLUX_PASSWORD": secret["influx"],
    }

    # first with wrong passwords: every peer refuses, the connector logs it and keeps trying
    wrong = {name: secret["wrong"] for name in right}
    connector = _start(run, "connector-wrong", command, wrong)
    wait_until(
        lambda: all(
            marker in _log(run, "connector-wrong")
            for marker in ("check username and password", "BadUserAccessDenied", "401")
        ),
        timeout=60,
    )
    assert connector.poll() is None
    assert _stop(connector) == 0

    # then with the right ones: values from both sources reach InfluxDB
    connector = _start(run, "connector", command, right)
    wait_until(lambda: _count(run, "sensor") > 0 and _count(run, "machine") > 0, timeout=90)
    assert _stop(connector) == 0
    assert _stop(line, signal.SIGINT) == 0
    assert (folder / "truth.json").is_file()
    broker.stop()
    run["influx"].stop()

    users = {
        "mqtt_line": ["line"],
        "mqtt_connector": ["connector"],
        "mqtt_probe": ["probe"],
        "opcua": [OPCUA_USER],
        "influx": [INFLUX_USER],
        "wrong": ["connector", OPCUA_USER, INFLUX_USER],
    }
    holders = {broker.password_file.resolve(), hardware.resolve()}
    searched, leaks = 0, []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.resolve() in holders:
            continue
        data = path.read_bytes()
        searched += 1
        for name, value in secret.items():
            for variant in _variants(value, users[name]):
                if variant.encode() in data:
                    leaks.append(f"{path.relative_to(folder)}: {name} ({variant[:12]}...)")
    assert searched > 10
    assert not leaks, "\n".join(leaks)

"""The shipped Mosquitto configuration (deploy/mosquitto, used by docker-compose.yml), run with
Debian's mosquitto through the shipped entrypoint.sh: passwords, the ACL, the TLS listener.

There is no Docker engine here: the config is the shipped one with only its paths and listener
ports rewritten (tests/connectors/mqtt_peers.py), and the ACL has one extra read-everything
user, `probe`, to see what the broker delivers.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .mqtt_peers import DEPLOY, ENTRYPOINT, Client, ShippedBroker, make_certificates, start_shipped_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    server = start_shipped_broker(tmp_path_factory.mktemp("shipped-mosquitto"))
    yield server
    server.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def _connected(clients: list[Client], broker: ShippedBroker, user: str, tls: bool = False) -> Client:
    client = Client(user, broker.passwords[user], ca_file=broker.ca_file if tls else None)
    clients.append(client)
    result = client.connect(broker.tls_port if tls else broker.port)
    assert result == "ok", f"{user}: {result}"
    return client


def _probe(clients: list[Client], broker: ShippedBroker) -> Client:
    probe = _connected(clients, broker, "probe")
    probe.subscribe("#")
    return probe


def test_anonymous_connections_are_refused(broker: ShippedBroker) -> None:
    for port, ca_file in ((broker.port, None), (broker.tls_port, broker.ca_file)):
        client = Client(ca_file=ca_file)
        try:
            assert client.connect(port) == "Not authorized"
        finally:
            client.close()


def test_a_wrong_password_is_refused(broker: ShippedBroker) -> None:
    for user in ("line", "connector"):
        client = Client(user, broker.passwords[user] + "-wrong")
        try:
            # Mosquitto 2.0.11 answers "Not authorized", later versions "Bad user name or password"
            assert client.connect(broker.port) in ("Not authorized", "Bad user name or password")
        finally:
            client.close()


def test_line_publishes_under_factory_only(broker: ShippedBroker, clients: list[Client]) -> None:
    probe = _probe(clients, broker)
    line = _connected(clients, broker, "line")
    line.publish("other/x")
    line.publish("spBv1.0/G/NDATA/E")
    line.publish("factory/L1/Press/energy")
    # one publisher's messages arrive in order: the last one here means the first two were dropped
    assert probe.received("factory/L1/Press/energy")
    assert probe.topics() == ["factory/L1/Press/energy"]


def test_connector_reads_factory_but_cannot_publish_there(
    broker: ShippedBroker, clients: list[Client]
) -> None:
    probe = _probe(clients, broker)
    connector = _connected(clients, broker, "connector")
    connector.subscribe("factory/#")
    line = _connected(clients, broker, "line")
    line.publish("factory/L1/Press/temperature", "21.5")
    assert connector.received("factory/L1/Press/temperature")

    connector.publish("factory/L1/Press/energy", "forged")
    connector.publish("spBv1.0/G/NCMD/E", "rebirth")  # the one thing it may send
    assert probe.received("spBv1.0/G/NCMD/E")
    assert "factory/L1/Press/energy" not in probe.topics()
    assert "factory/L1/Press/energy" not in connector.topics()


def test_tls_listener_with_the_test_ca(broker: ShippedBroker, clients: list[Client]) -> None:
    probe = _probe(clients, broker)
    line = _connected(clients, broker, "line", tls=True)
    line.publish("factory/L1/Press/tls")
    assert probe.received("factory/L1/Press/tls")

    without_ca = Client("line", broker.passwords["line"], tls=True)  # the system's CAs only
    result = without_ca.connect(broker.tls_port)
    without_ca.close()
    assert "CERTIFICATE_VERIFY_FAILED" in result, result

    plain = Client("line", broker.passwords["line"])  # no TLS at all on the TLS port
    result = plain.connect(broker.tls_port, timeout=5)
    plain.close()
    assert result in ("closed", "no answer") or "Error" in result, result


def test_entrypoint_writes_a_private_hashed_password_file(broker: ShippedBroker) -> None:
    mode = stat.S_IMODE(broker.password_file.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    text = broker.password_file.read_text()
    users = [line.split(":", 1)[0] for line in text.splitlines()]
    assert users == ["line", "connector", "probe"]  # probe: added by the test after the entrypoint
    for password in broker.passwords.values():
        assert password not in text


def _entrypoint(
    tmp_path: Path, env: dict[str, str], certs: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run entrypoint.sh with a stand-in broker that records the config it was given."""
    recorder = tmp_path / "record-broker"
    recorder.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/broker-args\n')
    recorder.chmod(0o755)
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MOSQUITTO_CONFIG": str(DEPLOY / "mosquitto.conf"),
        "MOSQUITTO_PASSWORD_FILE": str(tmp_path / "passwords"),
        "MOSQUITTO_CERTS": str(certs),
        "MOSQUITTO_BIN": str(recorder),
    }
    done = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT)], env={**base, **env}, capture_output=True, text=True, timeout=30
    )
    return done, tmp_path / "broker-args"


@pytest.mark.parametrize("missing", ["MQTT_LINE_PASSWORD", "MQTT_CONNECTOR_PASSWORD"])
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_entrypoint_refuses_to_start_without_a_password(tmp_path: Path, missing: str, how: str) -> None:
    env = {"MQTT_LINE_PASSWORD": "a-line-password", "MQTT_CONNECTOR_PASSWORD": "a-connector-password"}
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    done, args = _entrypoint(tmp_path, env, make_certificates(tmp_path / "certs"))
    assert done.returncode != 0
    assert f"set {missing} in .env" in done.stderr
    assert not args.exists() and not (tmp_path / "passwords").exists()


def test_entrypoint_without_certificates_runs_the_plain_listener_only(tmp_path: Path) -> None:
    env = {"MQTT_LINE_PASSWORD": "a-line-password", "MQTT_CONNECTOR_PASSWORD": "a-connector-password"}
    (tmp_path / "no-certs").mkdir()
    done, args = _entrypoint(tmp_path, env, tmp_path / "no-certs")
    assert done.returncode == 0, done.stderr
    assert "TLS listener 8883 off" in done.stderr
    flag, config = args.read_text().split()
    assert flag == "-c" and Path(config).parent == tmp_path
    text = Path(config).read_text()
    assert "listener 1883" in text and "8883" not in text and "certfile" not in text
    assert "allow_anonymous false" in text and "acl_file /fabbrica/acl" in text

    # only some of the three files: a clear error rather than a broker without TLS
    certs = make_certificates(tmp_path / "some-certs")
    (certs / "server.key").unlink()
    args.unlink()
    done, args = _entrypoint(tmp_path, env, certs)
    assert done.returncode == 1 and "must hold all of ca.crt, server.crt and server.key" in done.stderr
    assert not args.exists()

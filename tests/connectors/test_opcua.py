"""OPC UA source against a real asyncua server (tests/connectors/opcua_server.py) in a child
process: subscriptions by browse path and NodeId, a bad node skipped while the others flow,
polling, a server restart (reconnect and re-subscribe), and the browse command."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

from connectors.sinks.embedded import Historian

from .conftest import FABBRICA, influx_rows, wait_until

URI = "urn:fabbrica:test"


def _config(server, sink, **source):
    return {
        "name": "opcua-test",
        "sink": sink,
        "spool": {"path": "spool"},
        "opcua": [
            {"endpoint": server.url, "nodes": ["Objects/*/*/*"], "sampling_interval": "50ms", **source}
        ],
    }


def _truth(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_subscription_flows_and_a_bad_node_is_skipped(
    opcua_server, write_config, connector_factory, tmp_path
):
    truth = tmp_path / "truth.jsonl"
    server = opcua_server(period=0.1, truth=truth)
    nodes = [
        "Objects/*/*/*",
        f"nsu={URI};s=Line1.Nowhere.State",  # unknown node
        "Objects/NoSuchLine/*/*",  # matches nothing
        f"nsu={URI};s=Line1.Saw",  # an object, not a variable
    ]
    path = write_config(_config(server, {"type": "embedded", "path": "h.duckdb"}, nodes=nodes))
    connector = connector_factory(path).start()
    wait_until(lambda: "variables" in connector.output(), timeout=20)
    time.sleep(1.5)
    assert connector.stop() == 0
    output = connector.output()
    assert "connected, 9 variables" in output
    assert "Line1.Nowhere.State" in output and "NoSuchLine" in output and "not a variable" in output
    frame = Historian(tmp_path / "h.duckdb", read_only=True).query("machine")
    assert set(frame["line"]) == {"Line1"} and set(frame["station"]) == {"Saw", "Press", "Oven"}
    assert {"State", "PartsProduced", "Temperature"} <= set(frame.columns)
    assert "quality" not in frame.columns
    # Values landed with the server's source timestamps: each one is in the truth file.
    written = {(row["station"], row["name"], row["ts"]): row["value"] for row in _truth(truth)}
    saw = frame[frame["station"] == "Saw"].dropna(subset=["PartsProduced"])
    assert len(saw) >= 5
    for stamp, value in zip(saw["time"], saw["PartsProduced"], strict=True):
        assert written[("Saw", "PartsProduced", stamp.isoformat())] == value


def test_poll_mode_and_node_ids_by_namespace_uri(opcua_server, write_config, connector_factory, tmp_path):
    server = opcua_server(period=0.1)
    nodes = [f"nsu={URI};s=Line1.Press.PartsProduced", f"nsu={URI};s=Line1.Press.Temperature"]
    config = _config(
        server, {"type": "embedded", "path": "h.duckdb"}, nodes=nodes, mode="poll", poll_interval="0.2s"
    )
    connector = connector_factory(write_config(config)).start()
    wait_until(lambda: "variables" in connector.output(), timeout=20)
    time.sleep(1.5)
    assert connector.stop() == 0
    frame = Historian(tmp_path / "h.duckdb", read_only=True).query("machine")
    assert set(frame["station"]) == {"Press"}
    assert {"PartsProduced", "Temperature"} <= set(frame.columns) and "State" not in frame.columns
    assert len(frame) >= 4


def test_server_restart_reconnects_and_resubscribes(opcua_server, influxdb, write_config, connector_factory):
    server = opcua_server(period=0.1)
    database = f"opcua_{uuid.uuid4().hex[:6]}"
    sink = {"type": "influxdb1", "url": influxdb.url, "database": database, "flush_interval": "0.2s"}
    connector = connector_factory(write_config(_config(server, sink, stale_after="5s"))).start()
    wait_until(
        lambda: influx_rows(influxdb.url, database, "machine") if "variables" in connector.output() else None
    )
    server.stop()
    time.sleep(1.0)
    restarted_ns = time.time_ns()
    server.start()
    wait_until(
        lambda: influx_rows(
            influxdb.url, database, "machine", f"time > {restarted_ns} AND \"station\" = 'Oven'"
        ),
        timeout=30,
    )
    assert connector.stop() == 0
    assert connector.output().count("connected, 9 variables") >= 2
    health = influx_rows(influxdb.url, database, "connector_health")
    assert max(row["reconnects"] for row in health) >= 1


def test_browse_prints_a_config_section(opcua_server):
    server = opcua_server(period=1.0)
    result = subprocess.run(
        [*FABBRICA, "connect", "browse", server.url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (
        f'"nsu={URI};s=Line1.Press.PartsProduced"  # Objects/Line1/Press/PartsProduced (UInt32)'
        in result.stdout
    )
    assert result.stdout.count("nsu=") == 9


def test_basic256sha256_sign_and_encrypt_with_user_and_password(
    opcua_server, write_config, connector_factory, tmp_path
):
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    async def certificates() -> None:
        for name, uri, use in (
            ("server", "urn:fabbrica:test-plc", ExtendedKeyUsageOID.SERVER_AUTH),
            ("client", "urn:fabbrica:connector", ExtendedKeyUsageOID.CLIENT_AUTH),
        ):
            await setup_self_signed_certificate(
                tmp_path / f"{name}-key.pem",
                tmp_path / f"{name}-cert.der",
                uri,
                "127.0.0.1",
                [use],
                {"commonName": name},
            )

    asyncio.run(certificates())
    password = "plc-Pa55-secret"
    env = {
        "PLC_CERT": str(tmp_path / "server-cert.der"),
        "PLC_KEY": str(tmp_path / "server-key.pem"),
        "PLC_PASSWORD": password,
    }
    server = opcua_server(period=0.1, env_extra=env)
    source = {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate": "client-cert.der",
        "private_key": "client-key.pem",
        "username": "operator",
        "password": "${PLC_PASSWORD}",
    }
    path = write_config(_config(server, {"type": "embedded", "path": "h.duckdb"}, **source))
    connector = connector_factory(path, {"PLC_PASSWORD": password}).start()
    wait_until(lambda: "variables" in connector.output(), timeout=30)
    time.sleep(1.0)
    assert connector.stop() == 0
    assert "connected, 9 variables" in connector.output()
    assert password not in connector.output()
    frame = Historian(tmp_path / "h.duckdb", read_only=True).query("machine")
    assert set(frame["station"]) == {"Saw", "Press", "Oven"}


def test_a_hung_server_is_detected_and_the_connector_reconnects(
    opcua_server, influxdb, write_config, connector_factory
):
    server = opcua_server(period=0.1)
    database = f"hung_{uuid.uuid4().hex[:6]}"
    sink = {"type": "influxdb1", "url": influxdb.url, "database": database, "flush_interval": "0.2s"}
    connector = connector_factory(write_config(_config(server, sink, stale_after="2s", timeout="1s"))).start()
    wait_until(
        lambda: influx_rows(influxdb.url, database, "machine") if "variables" in connector.output() else None
    )
    server.process.send_signal(signal.SIGSTOP)  # the PLC hangs: connection open, nothing answers
    try:
        # the reconnect loop reports the lost session (the first backfill's line names the source too)
        after_connect = lambda: connector.output().split("connected, 9 variables", 1)[1]  # noqa: E731
        wait_until(lambda: "connectors.common.backoff" in after_connect(), timeout=20)
    finally:
        server.process.send_signal(signal.SIGCONT)
    resumed_ns = time.time_ns()
    wait_until(lambda: influx_rows(influxdb.url, database, "machine", f"time > {resumed_ns}"), timeout=30)
    assert connector.stop() == 0
    assert connector.output().count("connected, 9 variables") >= 2

"""`fabbrica demo --sink-config`, `twin calibrate` and `twin validate` against a password-protected
InfluxDB, as a new user would point the demo at the one behind Grafana.

InfluxDB 1.x is Debian's `influxd` with `auth-enabled = true` and an admin user; the sink file
holds only a `sink:` section, with user and password as `${INFLUX_USER}`/`${INFLUX_PASSWORD}`.
No InfluxDB 2.x is packaged for this machine: for the `influxdb2` sink, VictoriaMetrics (the
v2 write API) sits behind Debian's `vmauth`, which forwards a write only when its
`Authorization: Token ...` is the one configured, so what arrives is the token that was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DEMONSTRATOR
from tests.conftest import run_fabbrica as fabbrica
from tests.connectors.conftest import (  # noqa: F401  (victoria: the shared VictoriaMetrics fixture)
    Service,
    find_binary,
    free_port,
    influx_ping,
    influxd_service,
    victoria,
    wait_until,
)

USER = "grafana-feeder"
PASSWORD = f"Zq-{secrets.token_hex(12)}"
DATABASE = "plant"


def _query(url: str, statement: str, password: str | None, database: str = "") -> dict[str, Any]:
    body = urllib.parse.urlencode({"q": statement, "db": database}).encode()
    request = urllib.request.Request(f"{url}/query", data=body)
    if password is not None:
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _count(url: str, measurement: str) -> int:
    answer = _query(url, f'SELECT count(*) FROM "{measurement}"', PASSWORD, DATABASE)
    series = answer["results"][0].get("series") or []
    return max((value for value in series[0]["values"][0][1:] if value), default=0) if series else 0


def assert_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit code 2 and one line on stderr, naming what went wrong, with no secret and no traceback."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert PASSWORD not in done.stderr + done.stdout
    return lines[0]


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """InfluxDB 1.x with authentication on and one admin user."""
    service = influxd_service(tmp_path_factory.mktemp("influx-auth"), auth=True)
    service.start()
    try:
        wait_until(lambda: influx_ping(service.url), timeout=20)  # type: ignore[attr-defined]
        # the first user may be created without credentials; the statement goes in the body
        _query(service.url, f"CREATE USER \"{USER}\" WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES", None)  # type: ignore[attr-defined]
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def sink_file(influx: Service, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with only a `sink:` section, the credentials from the environment."""
    path = tmp_path_factory.mktemp("sink") / "influx-sink.yaml"
    sink = {
        "type": "influxdb1",
        "url": influx.url,  # type: ignore[attr-defined]
        "database": DATABASE,
        "username": "${INFLUX_USER}",
        "password": "${INFLUX_PASSWORD}",
    }
    path.write_text(yaml.safe_dump({"sink": sink}, sort_keys=False))
    return path


ENV = {"INFLUX_USER": USER, "INFLUX_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def demo(sink_file: Path) -> Path:
    out = sink_file.parent / "out"
    done = fabbrica(
        "demo", "--sink-config", str(sink_file), "--out", str(out), "--hours", "3", "--speed", "1200",
        env=ENV,
        cwd=sink_file.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.strip().endswith("report.html")
    return out


def test_the_demo_writes_with_the_password_from_the_environment(demo: Path, influx: Service) -> None:
    url = influx.url  # type: ignore[attr-defined]
    with pytest.raises(urllib.error.HTTPError) as refused:  # authentication is on
        _query(url, 'SELECT count(*) FROM "machine"', None, DATABASE)
    refused.value.close()
    assert refused.value.code == 401
    assert _count(url, "machine") > 100 and _count(url, "part") > 10
    # calibrated and validated from what it read back from InfluxDB
    assert f"# source: {demo.parent / 'influx-sink.yaml'}" in (demo / "calibrated.yaml").read_text()
    assert (demo / "report.html").exists() and (demo / "experiment" / "runs.parquet").exists()


def test_calibrate_and_validate_read_back_with_the_password(
    demo: Path, sink_file: Path, influx: Service
) -> None:
    calibrated = sink_file.parent / "calibrated-again.yaml"
    line = str(DEMONSTRATOR)
    done = fabbrica(
        "twin", "calibrate", "--line", line, "--source", str(sink_file), "--out", str(calibrated),
        env=ENV,
        cwd=sink_file.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "speed 1200" in calibrated.read_text()  # inferred from the data read back
    done = fabbrica(
        "twin", "validate", str(calibrated), "--source", str(sink_file), "--json", env=ENV, cwd=demo
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["verdict"] in ("valid", "invalid") and result["throughput"]["observed"] > 10
    # the database's URL, with the user and password from INFLUX_USERNAME/INFLUX_PASSWORD
    url = f"{influx.url}/{DATABASE}"  # type: ignore[attr-defined]
    login = {"INFLUX_USERNAME": USER, "INFLUX_PASSWORD": PASSWORD}
    done = fabbrica("twin", "validate", str(calibrated), "--source", url, "--json", env=login, cwd=demo)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["throughput"] == result["throughput"]


def test_a_wrong_password_is_one_line_and_exit_2(demo: Path, sink_file: Path, influx: Service) -> None:
    wrong = {"INFLUX_USER": USER, "INFLUX_PASSWORD": "not-the-password"}
    started = time.monotonic()
    done = fabbrica(
        "demo", "--sink-config", str(sink_file), "--out", str(demo.parent / "wrong"), env=wrong, cwd=demo
    )
    # refused before the line runs (8 h at speed 240 by default: two minutes), not after
    assert time.monotonic() - started < 60
    assert_one_line(done, str(sink_file), "401", "authorization failed")
    calibrated = str(demo / "calibrated.yaml")
    done = fabbrica("twin", "validate", calibrated, "--source", str(sink_file), env=wrong, cwd=demo)
    assert_one_line(done, str(sink_file), "401")
    url = f"{influx.url}/{DATABASE}"  # type: ignore[attr-defined]
    no_login = {"INFLUX_USERNAME": "", "INFLUX_PASSWORD": ""}
    line = str(DEMONSTRATOR)
    done = fabbrica(
        "twin", "calibrate", "--line", line, "--source", url, "--out", "x.yaml", env=no_login, cwd=demo
    )
    assert_one_line(done, url, "401")
    # an unset variable: the file and the field, before anything connects
    environ_without = {key: value for key, value in os.environ.items() if key != "INFLUX_PASSWORD"}
    done = subprocess.run(
        [sys.executable, "-m", "fabbrica", "demo", "--sink-config", str(sink_file), "--out", "unset"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=demo,
        env={**environ_without, "INFLUX_USER": USER},
    )
    assert_one_line(done, str(sink_file), "sink.password", "INFLUX_PASSWORD is not set")


# -- the influxdb2 sink: the token that reaches the server ---------------------------------------


@pytest.fixture(scope="module")
def vmauth(victoria: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:  # noqa: F811
    """vmauth in front of VictoriaMetrics, letting through only `Token <the token>`."""
    binary = find_binary("vmauth", "/usr/bin/vmauth")
    folder = tmp_path_factory.mktemp("vmauth")
    token = f"tok-{secrets.token_hex(16)}"
    (folder / "auth.yml").write_text(
        yaml.safe_dump({"users": [{"bearer_token": token, "url_prefix": victoria.url}]})  # type: ignore[attr-defined]
    )
    port = free_port()
    command = [
        binary,
        f"-auth.config={folder / 'auth.yml'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-loggerLevel=ERROR",
    ]
    service = Service("vmauth", command, port, folder)
    service.start()
    service.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    service.token = token  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        service.stop()


def _write_v2(url: str, token: str, line: bytes) -> int:
    request = urllib.request.Request(
        f"{url}/api/v2/write?org=fabbrica&bucket=plant&precision=ns", data=line, method="POST"
    )
    request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def _series(victoria_url: str, name: str, since_s: float) -> list[dict[str, Any]]:
    urllib.request.urlopen(f"{victoria_url}/internal/force_flush", timeout=10).close()
    params = urllib.parse.urlencode({"match[]": f'{{__name__="{name}"}}', "start": f"{since_s:.3f}"})
    with urllib.request.urlopen(f"{victoria_url}/api/v1/export?{params}", timeout=10) as answer:
        return [json.loads(line) for line in answer.read().decode().splitlines() if line.strip()]


def test_the_influxdb2_sink_sends_the_token_from_the_environment(
    vmauth: Service,
    victoria: Service,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twin.line import load_line
    from twinloop.demo import stream_line
    from twinloop.history import sink_in_file

    url, token = vmauth.url, vmauth.token  # type: ignore[attr-defined]
    # the server checks: a masked token, or none, is turned away
    assert _write_v2(url, "**********", b"probe v=1") >= 400
    assert _write_v2(url, token, b"probe v=1") == 204
    # a whole connector file, as a user copies it from deploy/: the demo takes its sink
    config = tmp_path / "connector.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "plant",
                "sink": {
                    "type": "influxdb2",
                    "url": url,
                    "org": "fabbrica",
                    "bucket": "plant",
                    "token": "${INFLUX_TOKEN}",
                },
                "spool": {"path": "spool"},
                "mqtt": [
                    {
                        "url": "mqtt://127.0.0.1:1883",
                        "topics": [{"filter": "factory/+/+/+", "format": "json"}],
                    }
                ],
            },
            sort_keys=False,
        )
    )
    monkeypatch.setenv("INFLUX_TOKEN", token)
    since = time.time() - 1
    sink = sink_in_file(config, "--sink-config")
    line = load_line(DEMONSTRATOR)
    _, _, _, health = asyncio.run(
        stream_line(line, tmp_path / "out", speed=1200, hours=0.5, mqtt_url=None, sink=sink, seed=2)
    )
    assert health["points_written"] > 100 and health["rejected"] == 0, health
    produced = _series(victoria.url, "machine_PartsProduced", since)  # type: ignore[attr-defined]
    assert {series["metric"].get("station") for series in produced} >= {"mill", "test"}

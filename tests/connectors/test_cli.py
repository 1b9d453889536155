"""`fabbrica connect`: config validation (exit 2, one line naming the field), env substitution,
secrets kept out of logs, the sample configs, and both command forms."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.config import read_config
from fabbrica.cli import app

from .conftest import FABBRICA, ROOT, influx_rows, wait_until

runner = CliRunner()
SAMPLES = sorted((ROOT / "connectors").glob("*/sample.yaml"))
MQTT = {"url": "mqtt://127.0.0.1:1883", "topics": [{"filter": "a/#", "format": "json"}]}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"sink": {"type": "influx"}, "mqtt": [MQTT]},
            "sink: type must be one of: influxdb1, influxdb2, embedded",
        ),
        (
            {"sink": {"type": "influxdb1", "url": "http://x:8086"}, "mqtt": [MQTT]},
            "sink.database: required field",
        ),
        (
            {"opcua": [{"endpoint": "opc.tcp://h:4840", "nodes": ["x"], "sampling_interval": "soon"}]},
            "opcua[0].sampling_interval: not a duration",
        ),
        (
            {"mqtt": [{**MQTT, "topics": [{"filter": "a/#", "format": "xml"}]}]},
            "mqtt[0].topics[0].format: must be 'json', 'number' or 'sparkplug'",
        ),
        ({"mqtt": [{**MQTT, "url": "http://h"}]}, "mqtt[0].url: must be mqtt://host:port"),
        ({"mqtt": [MQTT], "spool": {"max_bytes": "lots"}}, "spool.max_bytes: not a size"),
        ({"mqtt": [MQTT], "colour": "red"}, "colour: unknown key"),
        ({}, "no source"),
        (
            {
                "sink": {"type": "influxdb2", "url": "http://h", "bucket": "b", "token": "${NO_SUCH_TOKEN}"},
                "mqtt": [MQTT],
            },
            "sink.token: environment variable NO_SUCH_TOKEN is not set",
        ),
    ],
)
def test_bad_config_exits_2_with_one_line(write_config, config, expected):
    path = write_config(config)
    result = runner.invoke(app, ["connect", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: ")
    assert expected in lines[0]


def test_missing_file_and_bad_yaml(tmp_path: Path):
    result = runner.invoke(app, ["connect", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "file not found" in result.stderr
    (tmp_path / "bad.yaml").write_text("sink: [unclosed\n")
    result = runner.invoke(app, ["connect", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and "invalid YAML at line" in result.stderr


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.parent.name)
def test_every_sample_config_loads(sample: Path):
    env = {"INFLUX_TOKEN": "t", "OPCUA_PASSWORD": "p", "MQTT_PASSWORD": "p", "INFLUX_PASSWORD": "p"}
    loaded = read_config(sample, env)
    assert loaded.config.opcua or loaded.config.mqtt
    result = runner.invoke(app, ["connect", str(sample), "--check"], env=env)
    assert result.exit_code == 0, result.output


def test_readmes_carry_the_sample_configs():
    result = subprocess.run(
        [*FABBRICA[:1], "-m", "connectors.docs_gen", "--check"], cwd=ROOT, capture_output=True
    )
    assert result.returncode == 0, result.stdout


def test_connect_help_lists_both_forms():
    result = runner.invoke(app, ["connect", "--help"])
    assert result.exit_code == 0
    assert "CONFIG.yaml" in result.output and "browse" in result.output


def test_secrets_from_env_never_reach_the_logs(write_config, connector_factory, influxdb, mosquitto):
    secret, token = "s3cr3t-Pa55word", "tok-98765-secret"
    path = write_config(
        {
            "sink": {
                "type": "influxdb1",
                "url": influxdb.url,
                "database": "secrets",
                "username": "u",
                "password": "${DB_PASSWORD}",
            },
            "mqtt": [
                {
                    "url": mosquitto.url,
                    "username": "connector",
                    "password": "${MQTT_PASSWORD}",
                    "topics": [{"filter": "x/#"}],
                }
            ],
            "opcua": [
                {
                    "endpoint": "opc.tcp://127.0.0.1:1/",
                    "nodes": ["Objects/*"],
                    "username": "op",
                    "password": "${MQTT_TOKEN}",
                }
            ],
            "health": {"interval": "0.5s"},
        }
    )
    connector = connector_factory(
        path, {"DB_PASSWORD": secret, "MQTT_PASSWORD": secret, "MQTT_TOKEN": token}
    ).start()
    wait_until(
        lambda: influx_rows(influxdb.url, "secrets", "connector_health") if _db(influxdb) else None, 20
    )
    assert connector.stop() == 0
    output = connector.output()
    assert "connected as" in output  # the log is verbose (-v) ...
    assert secret not in output and token not in output  # ... and holds no secret


def _db(influxdb) -> bool:
    from .conftest import influxql

    return any(
        row == ["secrets"]
        for item in influxql(influxdb.url, "", "SHOW DATABASES")
        for row in item.get("values", [])
    )

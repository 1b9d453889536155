"""docker-compose.yml: valid for Debian's docker-compose (1.29), every mounted file present,
no default secrets, health checks and restart policies on every long-running service."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from connectors.config import read_config

from ..ci import in_ci
from ..connectors.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SECRETS = (
    "INFLUX_ADMIN_PASSWORD",
    "INFLUX_TOKEN",
    "GRAFANA_ADMIN_PASSWORD",
    "MQTT_LINE_PASSWORD",
    "MQTT_CONNECTOR_PASSWORD",
)


def _example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    message = "docker-compose not installed (bash scripts/install-system-packages.sh)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    command = [
        _docker_compose(),
        "--project-directory",
        str(ROOT),
        "-f",
        str(COMPOSE),
        "--env-file",
        str(env_file),
    ]
    clean = {key: value for key, value in os.environ.items() if key not in _example()}
    return subprocess.run([*command, "config"], capture_output=True, text=True, timeout=60, env=clean)


@pytest.fixture(scope="module")
def test_env() -> dict[str, str]:
    env = _example()
    for key in SECRETS:
        assert env[key] == "", f".env.example must not hold a value for the secret {key}"
        env[key] = secrets.token_hex(16)
    return env


def test_example_lists_every_variable_the_compose_file_uses() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert used <= set(_example()), used - set(_example())


def test_compose_config_is_valid_and_every_mounted_file_exists(
    tmp_path: Path, test_env: dict[str, str]
) -> None:
    done = _config(tmp_path, test_env)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "line", "connector"}
    mounted = []
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name}: no health check"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source} is mounted but missing"
                mounted.append(Path(source))
            else:
                assert source in config["volumes"], f"{name}: {source} is not a named volume"
    assert ROOT / "deploy" / "mosquitto" in mounted and ROOT / "grafana" / "provisioning" in mounted
    for required in ("mosquitto.conf", "acl", "entrypoint.sh"):
        assert (ROOT / "deploy" / "mosquitto" / required).is_file()
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "acl_file /fabbrica/acl" in conf
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == test_env["GRAFANA_ADMIN_PASSWORD"]
    assert grafana["INFLUX_TOKEN"] == test_env["INFLUX_TOKEN"]
    assert services["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == test_env["INFLUX_TOKEN"]


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_run_without_each_secret(
    tmp_path: Path, test_env: dict[str, str], secret: str
) -> None:
    done = _config(tmp_path, {**test_env, secret: ""})
    assert done.returncode != 0
    assert secret in done.stderr


def test_the_stack_connector_config_loads_with_the_compose_environment(test_env: dict[str, str]) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    environment = {
        key: _expand(str(value), test_env)
        for key, value in compose["services"]["connector"]["environment"].items()
    }
    loaded = read_config(ROOT / "deploy" / "connector.yaml", environment)
    config = loaded.config
    assert config.sink.type == "influxdb2" and config.sink.bucket == test_env["INFLUX_BUCKET"]
    assert config.opcua[0].endpoint == test_env["OPCUA_ENDPOINT"]
    assert config.mqtt[0].password is not None
    assert (
        test_env["MQTT_CONNECTOR_PASSWORD"] in loaded.secrets and test_env["INFLUX_TOKEN"] in loaded.secrets
    )


def _expand(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, enough for the connector's environment."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or (default if match.group(2) == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", replace, value)

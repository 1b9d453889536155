"""The connector (`fabbrica connect`) against the simulated PLC (`fabbrica line serve`) with security.

One served line for the module offers every policy (None; Basic256Sha256 and
Aes256_Sha256_RsaPss, each Sign and SignAndEncrypt), wants a user name and password, and
trusts one client certificate. One connector for the module runs a source per combination,
plus one without `security_policy` and one with `security_policy: None`, into the embedded
historian; the tests read what each source delivered. A second connector, whose certificate
the PLC does not trust, is refused and keeps retrying.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from connectors.config import read_config
from connectors.opcua.config import OpcUaSource
from connectors.sinks.embedded import Historian
from simulations.hardware.config import HardwareConfig
from tests.hardware.conftest import FAST_LINE, Pki, ServedProcess, start_serving
from tests.hardware.conftest import pki as pki  # the session's client certificates (a fixture)

from .conftest import FABBRICA, Connector, free_port, wait_until

USER, PASSWORD = "operator", "Secur3-line-Pa55"
SECURED = [
    ("Basic256Sha256", "Sign"),
    ("Basic256Sha256", "SignAndEncrypt"),
    ("Aes256_Sha256_RsaPss", "Sign"),
    ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
]
NODES = ["Objects/pilot/*/State", "Objects/pilot/*/Power"]  # 6 variables that change every second


def _label(policy: str, mode: str) -> str:
    return f"{policy}-{mode}"


@pytest.fixture(scope="module")
def plc(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ServedProcess]:
    folder = tmp_path_factory.mktemp("secured-plc")
    line = folder / "line.yaml"
    line.write_text(yaml.safe_dump(FAST_LINE))
    hardware = folder / "hardware.yaml"
    security = {
        "policies": ["None", *(_label(policy, mode) for policy, mode in SECURED)],
        "pki_dir": str(folder / "server-pki"),
        "users": {USER: PASSWORD},
        "trusted_certificates": str(pki.trusted),
    }
    hardware.write_text(yaml.safe_dump({"opcua": {"security": security}}))
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    served = start_serving(
        [str(line), "--speed", "20", "--opcua", endpoint, "--mqtt", "none", "--hardware", str(hardware)],
        truth=folder / "truth.json",
        endpoint=endpoint,
    )
    yield served
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


def _source(plc: ServedProcess, name: str, **security: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": plc.endpoint,
        "nodes": NODES,
        "sampling_interval": "100ms",
        "tags": {"source": name},
        "username": USER,
        "password": "${PLC_PASSWORD}",
        "reconnect_max": "1s",
        **security,
    }


def _secured(pki: Pki, policy: str, mode: str, certificate: Any = None) -> dict[str, Any]:
    pair = certificate or pki.client
    return {
        "security_policy": policy,
        "security_mode": mode,
        "certificate": str(pair.certificate),
        "private_key": str(pair.private_key),
        "application_uri": pki.client_uri,
    }


@dataclass
class Delivered:
    frame: pd.DataFrame
    output: str


@contextlib.contextmanager
def _connector(folder: Path, sources: list[dict[str, Any]]) -> Iterator[Connector]:
    """A connector with `sources` into `folder/h.duckdb`; killed if the test leaves it running."""
    config = {
        "name": folder.name,
        "sink": {"type": "embedded", "path": "h.duckdb"},
        "health": {"interval": "0.5s"},
        "opcua": sources,
    }
    path = folder / "connect.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    connector = Connector(path, {"PLC_PASSWORD": PASSWORD}).start()
    try:
        yield connector
    finally:
        if connector.process is not None:
            connector.process.kill()
            connector.process.wait()


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory, plc: ServedProcess, pki: Pki) -> Delivered:
    folder = tmp_path_factory.mktemp("connector")
    sources = [_source(plc, _label(policy, mode), **_secured(pki, policy, mode)) for policy, mode in SECURED]
    sources.append(_source(plc, "unset"))
    sources.append(_source(plc, "explicit-none", security_policy="None"))
    with _connector(folder, sources) as connector:
        wait_until(lambda: connector.output().count("connected, 6 variables") == len(sources), 60)
        time.sleep(3.0)  # three samples of Power per station
        assert connector.stop() == 0
    output = connector.output()
    assert PASSWORD not in output
    frame = Historian(folder / "h.duckdb", read_only=True).query("machine")
    return Delivered(frame, output)


def test_the_plc_warns_that_it_offers_security_policy_none(plc: ServedProcess) -> None:
    warnings = [line for line in plc.out if "offers security policy None" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and plc.endpoint in warnings[0]
    assert "anyone on the network can read and write" in warnings[0]


@pytest.mark.parametrize(("policy", "mode"), SECURED, ids=[_label(*combination) for combination in SECURED])
def test_values_land_with_policy_mode_user_and_password(delivered: Delivered, policy: str, mode: str) -> None:
    label = _label(policy, mode)
    rows = delivered.frame[delivered.frame["source"] == label]
    assert set(rows["station"]) == {"cut", "weld", "pack"}
    assert rows["Power"].notna().sum() >= 6 and rows["State"].notna().sum() >= 3
    assert f"opcua {label}: connected, 6 variables" in delivered.output
    assert f"{label}: no security_policy" not in delivered.output
    assert f"{label}: security_policy None" not in delivered.output


def test_security_left_out_connects_without_security_and_warns(delivered: Delivered) -> None:
    assert set(delivered.frame[delivered.frame["source"] == "unset"]["station"]) == {"cut", "weld", "pack"}
    warning = (
        "WARNING connectors.opcua.source: unset: no security_policy configured, connecting without "
        "security; set security_policy: None to choose this explicitly, or Basic256Sha256 / "
        "Aes256_Sha256_RsaPss with a certificate"
    )
    assert delivered.output.count(warning) == 1, "once, not at every reconnect"


def test_security_none_chosen_explicitly_warns(delivered: Delivered) -> None:
    rows = delivered.frame[delivered.frame["source"] == "explicit-none"]
    assert set(rows["station"]) == {"cut", "weld", "pack"}
    warning = (
        "WARNING connectors.opcua.source: explicit-none: security_policy None chosen explicitly: "
        "values travel unsigned and unencrypted"
    )
    assert delivered.output.count(warning) == 1
    assert "explicit-none: no security_policy" not in delivered.output


def test_an_untrusted_connector_is_refused_and_keeps_retrying(
    tmp_path: Path,
    plc: ServedProcess,
    pki: Pki,
) -> None:
    security = _secured(pki, "Aes256_Sha256_RsaPss", "SignAndEncrypt", certificate=pki.untrusted)
    with _connector(tmp_path, [_source(plc, "stranger", **security)]) as connector:
        wait_until(lambda: "BadCertificateUntrusted" in connector.output(), timeout=60)
        time.sleep(3.0)
        assert connector.process is not None and connector.process.poll() is None, "still running"
        assert connector.stop() == 0, "stopped by SIGTERM, not crashed"
    output = connector.output()
    assert "WARNING" in output and "opcua stranger: BadCertificateUntrusted" in output
    assert "connected, 6 variables" not in output
    historian = Historian(tmp_path / "h.duckdb", read_only=True)
    assert historian.query("machine").empty, "nothing lands"
    health = historian.query("connector_health")
    assert health["reconnects"].max() >= 2, "it tried again, and again"
    assert health["points_in"].max() == 0


def test_browse_a_secured_plc_prints_a_config_that_loads(
    tmp_path: Path, plc: ServedProcess, pki: Pki
) -> None:
    command = [
        *FABBRICA,
        "connect",
        "browse",
        plc.endpoint,
        "--security-policy",
        "Aes256_Sha256_RsaPss",
        "--security-mode",
        "Sign",
        "--certificate",
        str(pki.client.certificate),
        "--private-key",
        str(pki.client.private_key),
        "--application-uri",
        pki.client_uri,
        "--username",
        USER,
    ]
    env = {**os.environ, "OPCUA_PASSWORD": PASSWORD}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert PASSWORD not in text + result.stderr
    for line in (
        "    security_policy: Aes256_Sha256_RsaPss",
        "    security_mode: Sign",
        f'    certificate: "{pki.client.certificate}"',
        f'    private_key: "{pki.client.private_key}"',
        f'    username: "{USER}"',
        "    password: ${OPCUA_PASSWORD}",
    ):
        assert line in text.splitlines(), line
    assert (
        '"nsu=urn:fabbrica:pilot-line;s=pilot.cut.PartsProduced"  # Objects/pilot/cut/PartsProduced' in text
    )
    path = tmp_path / "browsed.yaml"
    path.write_text(text)
    loaded = read_config(path, environ={"OPCUA_PASSWORD": PASSWORD})
    source: OpcUaSource = loaded.config.opcua[0]
    assert (source.policy, source.message_mode, source.username) == ("Aes256_Sha256_RsaPss", "Sign", USER)
    assert source.password is not None and source.password.get_secret_value() == PASSWORD
    assert source.application_uri == pki.client_uri
    assert len(source.nodes) >= 3 * 17 and PASSWORD in loaded.secrets


# -- the settings alone ------------------------------------------------------------------------
CONTRACT = {"endpoint": "opc.tcp://127.0.0.1:4840", "nodes": ["Objects/*/*/*"], "sampling_interval": "100ms"}


def test_a_source_without_security_keys_loads_and_connects_without_security(tmp_path: Path) -> None:
    path = tmp_path / "connect.yaml"
    path.write_text(yaml.safe_dump({"opcua": [CONTRACT]}))
    source = read_config(path).config.opcua[0]
    assert source.security_policy is None and source.security_mode is None, "not set"
    assert (source.policy, source.message_mode) == ("None", "None")
    assert source.security_warning() == (
        "opc.tcp://127.0.0.1:4840: no security_policy configured, connecting without security; "
        "set security_policy: None to choose this explicitly, or Basic256Sha256 / Aes256_Sha256_RsaPss "
        "with a certificate"
    )
    explicit = OpcUaSource.model_validate({**CONTRACT, "name": "plc1", "security_policy": "None"})
    assert explicit.security_warning() == (
        "plc1: security_policy None chosen explicitly: values travel unsigned and unencrypted"
    )


def test_security_settings_are_checked_together() -> None:
    pair = {"certificate": "c.der", "private_key": "k.pem"}
    secured = OpcUaSource.model_validate({**CONTRACT, **pair, "security_policy": "Aes256_Sha256_RsaPss"})
    assert secured.message_mode == "SignAndEncrypt" and secured.security_warning() is None
    for settings, message in (
        ({"security_mode": "Sign"}, "security_mode Sign needs a security_policy"),
        ({"security_policy": "None", "security_mode": "SignAndEncrypt"}, "needs a security_policy"),
        ({"security_policy": "Basic256Sha256", "security_mode": "None", **pair}, "needs security_mode Sign"),
        ({"security_policy": "Basic256Sha256"}, "certificate and private_key are required"),
        ({"security_policy": "Basic128Rsa15", **pair}, "security_policy"),
    ):
        with pytest.raises(ValidationError, match=message):
            OpcUaSource.model_validate({**CONTRACT, **settings})


def test_the_plc_offers_the_aes256_policies_once_each() -> None:
    policies = ["Aes256_Sha256_RsaPss-Sign", "Aes256_Sha256_RsaPss-SignAndEncrypt"]
    config = HardwareConfig.model_validate({"opcua": {"security": {"policies": policies}}})
    assert config.opcua.security.policies == policies
    assert HardwareConfig().opcua.security.policies == ["None", *(_label(*pair) for pair in SECURED[:2])]
    with pytest.raises(ValidationError, match="listed twice"):
        HardwareConfig.model_validate({"opcua": {"security": {"policies": [policies[0], policies[0]]}}})

"""`fabbrica line serve` as a secured PLC: Basic256Sha256 endpoints, users, a trust list, and node-opcua.

One served line (a child process) for the module; its last test stops it with SIGINT
and checks that the truth file is written.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from simulations.hardware.pki import CertificatePair
from tests.hardware.conftest import FAST_LINE, NodeOpcua, Pki, ServedProcess, free_port, start_serving

NAMESPACE = "urn:fabbrica:pilot-line"
USER, PASSWORD = "operator", "s3cret-Passw0rd"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ServedProcess]:
    folder = tmp_path_factory.mktemp("secured")
    line = folder / "line.yaml"
    line.write_text(yaml.safe_dump(FAST_LINE))
    hardware = folder / "hardware.yaml"
    hardware.write_text(
        yaml.safe_dump(
            {
                "opcua": {
                    "security": {
                        "pki_dir": str(folder / "server-pki"),
                        "users": {USER: PASSWORD},
                        "trusted_certificates": str(pki.trusted),
                    }
                }
            }
        )
    )
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    served = start_serving(
        [str(line), "--speed", "50", "--opcua", endpoint, "--mqtt", "none", "--hardware", str(hardware)],
        truth=folder / "truth.json",
        endpoint=endpoint,
    )
    yield served
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


async def _read_parts(client: Client) -> int:
    ns = await client.get_namespace_index(NAMESPACE)
    node = await client.nodes.objects.get_child([f"{ns}:pilot", f"{ns}:cut", f"{ns}:PartsProduced"])
    return int(await node.read_value())


def _client(endpoint: str, pki: Pki, *, user: str | None = USER, password: str = PASSWORD) -> Client:
    client = Client(endpoint, timeout=10)
    client.application_uri = pki.client_uri
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    return client


def _read(
    endpoint: str,
    pki: Pki,
    *,
    certificate: CertificatePair | None = None,
    mode: ua.MessageSecurityMode | None = None,
    **kwargs: Any,
) -> int:
    async def read() -> int:
        client = _client(endpoint, pki, **kwargs)
        if certificate is not None and mode is not None:
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=str(certificate.certificate),
                private_key=str(certificate.private_key),
                mode=mode,
            )
        async with client:
            return await _read_parts(client)

    return asyncio.run(read())


def test_the_server_offers_none_sign_and_sign_and_encrypt(secured: ServedProcess, pki: Pki) -> None:
    async def endpoints() -> list[ua.EndpointDescription]:
        return await Client(secured.endpoint).connect_and_get_server_endpoints()

    offered = {
        (e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in asyncio.run(endpoints())
    }
    assert offered == {("None", "None_"), ("Basic256Sha256", "Sign"), ("Basic256Sha256", "SignAndEncrypt")}
    tokens = {t.TokenType for e in asyncio.run(endpoints()) for t in e.UserIdentityTokens}
    assert tokens == {ua.UserTokenType.UserName}, "with users configured, anonymous sessions are not offered"


def test_username_and_password_are_required(secured: ServedProcess, pki: Pki) -> None:
    assert _read(secured.endpoint, pki) >= 0
    with pytest.raises(ua.UaStatusCodeError) as refused:
        _read(secured.endpoint, pki, password="wrong")
    assert "BadUserAccessDenied" in type(refused.value).__name__
    with pytest.raises(ua.UaStatusCodeError) as anonymous:
        _read(secured.endpoint, pki, user=None)
    assert type(anonymous.value).__name__ in ("BadIdentityTokenRejected", "BadIdentityTokenInvalid")


@pytest.mark.parametrize("mode", [ua.MessageSecurityMode.Sign, ua.MessageSecurityMode.SignAndEncrypt])
def test_basic256sha256_with_a_trusted_client_certificate(
    secured: ServedProcess, pki: Pki, mode: ua.MessageSecurityMode
) -> None:
    assert _read(secured.endpoint, pki, certificate=pki.client, mode=mode) >= 0


def test_an_untrusted_client_certificate_is_refused(secured: ServedProcess, pki: Pki) -> None:
    with pytest.raises(ua.UaStatusCodeError) as refused:
        _read(secured.endpoint, pki, certificate=pki.untrusted, mode=ua.MessageSecurityMode.SignAndEncrypt)
    assert type(refused.value).__name__ == "BadCertificateUntrusted"


@pytest.mark.parametrize(
    ("policy", "mode"), [("None", "None"), ("Basic256Sha256", "SignAndEncrypt"), ("Basic256Sha256", "Sign")]
)
def test_node_opcua_connects_browses_and_reads(
    secured: ServedProcess, pki: Pki, node_opcua: NodeOpcua, policy: str, mode: str
) -> None:
    request: dict[str, Any] = {
        "endpoint": secured.endpoint,
        "namespaceUri": NAMESPACE,
        "line": "pilot",
        "securityPolicy": policy,
        "securityMode": mode,
        "user": USER,
        "password": PASSWORD,
        "applicationUri": pki.node_client_uri,
        # node-opcua sends its certificate even without security: the trust list applies then too
        "certificate": str(pki.node_client_pem),
        "privateKey": str(pki.node_client.private_key),
    }
    answer = node_opcua.run(request)
    assert "error" not in answer, answer
    assert list(answer["stations"]) == ["cut", "weld", "pack"]
    cut = answer["stations"]["cut"]
    assert sorted(cut["methods"]) == ["Reset", "Start", "Stop"]
    variables = cut["variables"]
    assert variables["PartsProduced"]["status"] == "Good"
    assert isinstance(variables["PartsProduced"]["value"], int)
    assert variables["StateName"]["value"] in ("working", "blocked", "starved", "down", "setup", "stopped")
    assert variables["State"]["nodeId"].endswith("s=pilot.cut.State")
    assert variables["Power"]["sourceTimestamp"].endswith("Z")


def test_sigint_stops_the_line_and_writes_the_truth(secured: ServedProcess, pki: Pki) -> None:
    produced = _read(secured.endpoint, pki)
    assert secured.stop(signal.SIGINT) == 0, "".join(secured.out)
    truth = json.loads(Path(secured.truth).read_text())
    assert truth["stations"]["cut"]["parts_produced"] >= produced
    assert truth["opcua"]["endpoints"] == [secured.endpoint]
    assert truth["simulated_s"] > 0

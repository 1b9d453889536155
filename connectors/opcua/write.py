"""Writing to a PLC over OPC UA: values and method calls, always over a signed and encrypted session.

The reading side (`source.py`) may run without security; a write changes the line, so this side
refuses to: a security policy (Basic256Sha256 or Aes256_Sha256_RsaPss) and SignAndEncrypt are
required, and the session logs in with a user and password (an operator of the PLC). Variables
and objects are named by their browse path below Objects (`("Pilot", "Release", "Hold")`), the
namespace taken from the node found, never from a stored index. A write the PLC refuses (out of
range, not allowed to this user, not over this session) raises `WriteRefused` naming the path and
the OPC UA status.

    async with PlcWriter(WriteTarget(endpoint=..., security_policy="Basic256Sha256",
                                     user="operator", password="..."), base=folder) as plc:
        await plc.write(("Pilot", "Release", "InterarrivalMean"), 24.0)

Without `certificate` and `private_key` a client certificate is made once (self-signed, for the
`application_uri`) in the `pki` folder and reused: a PLC that trusts only known certificates must
be given it once. The trade-off: one session per `async with`, so a writer opened for one advice
holds no connection between advices (an RSA handshake each time, well under a second).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from asyncua import Client, Node, ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import Field, SecretStr, model_validator

from connectors.opcua.client import POLICIES
from foundation.durations import Duration
from foundation.models import Strict

log = logging.getLogger(__name__)

WritePolicy = Literal["Basic256Sha256", "Aes256_Sha256_RsaPss"]
GENERATED_CERTIFICATE = "fabbrica-writer-cert.der"
GENERATED_KEY = "fabbrica-writer-key.pem"


class WriteTarget(Strict):
    """Where and as whom to write: a PLC endpoint, a secure session, an operator's login.

    `security_mode` is always SignAndEncrypt (a write never travels in the clear, nor unencrypted).
    """

    endpoint: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:port[/path]")
    security_policy: WritePolicy
    security_mode: Literal["SignAndEncrypt"] = "SignAndEncrypt"
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    pki: str = Field(default="pki", min_length=1)
    application_uri: str = Field(default="urn:fabbrica:writer", min_length=1)
    user: str = Field(min_length=1)
    password: SecretStr
    timeout: Duration = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _pair(self) -> WriteTarget:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key go together (or neither: one is made in pki)")
        return self


class WriteError(Exception):
    """The PLC could not be reached, or a path is not on it: one line."""


class WriteRefused(WriteError):
    """The PLC answered a write or a call with a Bad status (`status`: its name, e.g. BadOutOfRange)."""

    def __init__(self, path: str, status: str) -> None:
        super().__init__(f"{path}: refused by the PLC: {status}")
        self.path = path
        self.status = status


def _path(name: str, base: Path | None) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() or base is None else base / path


def client_certificate(target: WriteTarget, base: Path | None = None) -> tuple[Path, Path]:
    """The client certificate (DER or PEM) and key (PEM): the configured ones, or made once in `pki`."""
    if target.certificate is not None and target.private_key is not None:
        return _path(target.certificate, base), _path(target.private_key, base)
    folder = _path(target.pki, base)
    certificate, key_file = folder / GENERATED_CERTIFICATE, folder / GENERATED_KEY
    if certificate.is_file() and key_file.is_file() and _for_uri(certificate, target.application_uri):
        return certificate, key_file
    log.info("creating the client certificate %s for %s", certificate, target.application_uri)
    key = cert_gen.generate_private_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(target.application_uri)]
    made = cert_gen.generate_self_signed_app_certificate(
        key,
        "fabbrica writer",
        {"organizationName": "fabbrica"},
        names,
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=365,
    )
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(cert_gen.dump_private_key_as_pem(key))
    certificate.write_bytes(made.public_bytes(Encoding.DER))
    return certificate, key_file


def _for_uri(certificate: Path, uri: str) -> bool:
    try:
        loaded = x509.load_der_x509_certificate(certificate.read_bytes())
        names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return uri in names.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False


def _status_name(exc: ua.UaStatusCodeError) -> str:
    try:
        return ua.StatusCode(exc.code).name
    except Exception:
        return type(exc).__name__


class PlcWriter:
    """A signed and encrypted session with one PLC: read, write and call by browse path."""

    def __init__(self, target: WriteTarget, base: Path | None = None) -> None:
        self.target = target
        self.base = base
        self.client: Client | None = None
        self._nodes: dict[tuple[str, ...], Node] = {}

    async def __aenter__(self) -> PlcWriter:
        target = self.target
        certificate, key = client_certificate(target, self.base)
        client = Client(target.endpoint, timeout=target.timeout)
        client.name = client.description = "fabbrica writer"
        client.application_uri = target.application_uri
        client.set_user(target.user)
        client.set_password(target.password.get_secret_value())
        server_certificate = target.server_certificate
        try:
            await client.set_security(
                POLICIES[target.security_policy],
                certificate=str(certificate),
                private_key=str(key),
                server_certificate=str(_path(server_certificate, self.base)) if server_certificate else None,
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
            await client.connect()
        except ua.UaStatusCodeError as exc:
            raise WriteError(f"{target.endpoint}: session refused: {_status_name(exc)}") from None
        except (OSError, TimeoutError, ua.UaError) as exc:
            raise WriteError(f"{target.endpoint}: cannot connect: {exc or type(exc).__name__}") from None
        self.client = client
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.disconnect()
            except Exception as error:  # the session may already be gone; nothing to undo
                log.debug("disconnect from %s: %s", self.target.endpoint, error)

    async def node(self, path: Sequence[str]) -> Node:
        """The node at browse path `path` below Objects (names without namespace)."""
        key = tuple(path)
        if key in self._nodes:
            return self._nodes[key]
        assert self.client is not None, "use `async with PlcWriter(...)`"
        node = self.client.nodes.objects
        for depth, name in enumerate(key):
            found = None
            for child in await node.get_children():
                if (await child.read_browse_name()).Name == name:
                    found = child
                    break
            if found is None:
                raise WriteError(f"{self.target.endpoint}: no Objects/{'/'.join(key[: depth + 1])}")
            node = found
        self._nodes[key] = node
        return node

    async def read(self, path: Sequence[str]) -> Any:
        """The value of the variable at `path`."""
        node = await self.node(path)
        try:
            return await node.read_value()
        except ua.UaStatusCodeError as exc:
            raise WriteRefused("/".join(path), _status_name(exc)) from None

    async def write(self, path: Sequence[str], value: Any) -> None:
        """Write `value` to the variable at `path`, as the variable's own data type."""
        node = await self.node(path)
        try:
            kind = await node.read_data_type_as_variant_type()
            await node.write_value(ua.DataValue(ua.Variant(value, kind)))
        except ua.UaStatusCodeError as exc:
            raise WriteRefused("/".join(path), _status_name(exc)) from None

    async def call(self, path: Sequence[str], method: str, *arguments: ua.Variant) -> Any:
        """Call `method` of the object at `path` with typed `arguments`; its output."""
        target = await self.node(path)
        method_node = await self.node((*path, method))
        try:
            return await target.call_method(method_node, *arguments)
        except ua.UaStatusCodeError as exc:
            raise WriteRefused(f"{'/'.join(path)}.{method}", _status_name(exc)) from None


__all__ = ["PlcWriter", "WriteError", "WriteRefused", "WriteTarget", "client_certificate"]

"""Configuration of one OPC UA source (one server endpoint).

opcua:
  - endpoint: opc.tcp://127.0.0.1:4840
    nodes: ["Objects/*/*/*"]
    sampling_interval: 100ms
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from foundation.durations import Duration
from foundation.models import Strict

SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]
NODE_ID = re.compile(r"^(nsu=[^;]+;|ns=\d+;)?[isgb]=.+$")


class Deadband(Strict):
    """Report a change only when it exceeds `value`: absolute units, or percent of the EU range.

    Percent needs a server that supports it (asyncua's own server reports every change).
    """

    type: Literal["absolute", "percent"] = "absolute"
    value: float = Field(ge=0)


class OpcUaSource(Strict):
    """One OPC UA server: which variables to watch, how, and how they become points.

    `nodes` holds browse-path patterns below the Objects folder (`Objects/*/*/*`; `*` matches
    one level, `**` any number) or NodeIds with the namespace given by URI
    (`nsu=urn:acme:plc;s=Line1.Press.State`). The path levels between Objects and the variable
    become the tags named in `path_tags` (by default line, station); the variable's browse
    name becomes the field.

    Security: `security_policy` omitted means no security, logged as a warning at connect;
    `security_policy: None` chooses it explicitly (still a warning). With a policy, the
    certificate and private key are required and `security_mode` defaults to SignAndEncrypt.
    `policy` and `message_mode` give the values in effect.
    """

    name: str | None = None
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:port[/path]")
    security_policy: SecurityPolicy | None = Field(
        default=None, description="omitted: no security, with a warning; None: no security, chosen"
    )
    security_mode: SecurityMode | None = Field(
        default=None, description="omitted: SignAndEncrypt with a security policy, else None"
    )
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    application_uri: str = Field(default="urn:fabbrica:connector", min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    nodes: list[str] = Field(min_length=1)
    mode: Literal["subscribe", "poll"] = "subscribe"
    sampling_interval: Duration = Field(default=0.1, ge=0)
    publishing_interval: Duration | None = Field(default=None, gt=0)
    queue_size: int = Field(default=1000, ge=1, le=100_000)
    deadband: Deadband | None = None
    poll_interval: Duration = Field(default=1.0, gt=0)
    timestamp: Literal["source", "server", "receive"] = "source"
    measurement: str = Field(default="machine", min_length=1)
    path_tags: list[str] = Field(default_factory=lambda: ["line", "station"])
    tags: dict[str, str] = Field(default_factory=dict)
    stale_after: Duration = Field(default=30.0, ge=0)
    backfill: bool = True
    backfill_max: Duration = Field(default=3600.0, gt=0)
    include_standard_nodes: bool = False
    timeout: Duration = Field(default=5.0, gt=0)
    reconnect_max: Duration = Field(default=30.0, gt=0)

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, nodes: list[str]) -> list[str]:
        for index, node in enumerate(nodes):
            text = node.strip()
            if not text:
                raise ValueError(f"nodes[{index}] is empty")
            if text.startswith("ns=") and not NODE_ID.match(text):
                raise ValueError(f"nodes[{index}]: not a NodeId: {text!r}")
        return nodes

    @model_validator(mode="after")
    def _security(self) -> OpcUaSource:
        if self.policy == "None" and self.security_mode not in (None, "None"):
            raise ValueError(
                f"security_mode {self.security_mode} needs a security_policy "
                "(Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss)"
            )
        if self.policy != "None" and self.security_mode == "None":
            raise ValueError(f"security_policy {self.policy} needs security_mode Sign or SignAndEncrypt")
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(f"certificate and private_key are required with security_policy {self.policy}")
        if (self.password is None) != (self.username is None):
            raise ValueError("username and password go together")
        return self

    @property
    def policy(self) -> SecurityPolicy:
        """The security policy in effect: the configured one, or None when not set."""
        return self.security_policy or "None"

    @property
    def message_mode(self) -> SecurityMode:
        """The message security mode in effect: SignAndEncrypt by default with a policy."""
        if self.security_mode is not None:
            return self.security_mode
        return "None" if self.policy == "None" else "SignAndEncrypt"

    def security_warning(self) -> str | None:
        """What to warn about at connect: security not configured, or None chosen; else None."""
        if self.security_policy is None:
            return (
                f"{self.label}: no security_policy configured, connecting without security; "
                "set security_policy: None to choose this explicitly, "
                "or Basic256Sha256 / Aes256_Sha256_RsaPss with a certificate"
            )
        if self.security_policy == "None":
            return (
                f"{self.label}: security_policy None chosen explicitly: "
                "values travel unsigned and unencrypted"
            )
        return None

    @property
    def label(self) -> str:
        return self.name or self.endpoint

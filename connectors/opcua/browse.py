"""`fabbrica connect browse`: a server's variables as a ready-to-edit `opcua:` config section.

The section repeats how the browse connected (security policy and mode, certificate, user),
so that, written to a file, it connects the same way. A password is never printed: the
section reads it from `${OPCUA_PASSWORD}`.

    text = await config_section(OpcUaSource(endpoint="opc.tcp://127.0.0.1:4840", nodes=["Objects/**"]))
"""

from __future__ import annotations

import json
from pathlib import Path

from connectors.opcua.client import browse_variables, make_client, secure
from connectors.opcua.config import OpcUaSource

PASSWORD_VARIABLE = "OPCUA_PASSWORD"


async def config_section(config: OpcUaSource, depth: int = 8) -> str:
    """Connect as `config` says, browse `depth` levels below Objects and render the section."""
    client = make_client(config)
    await secure(client, config)
    await client.connect(auto_reconnect=False)
    try:
        variables = await browse_variables(client, depth)
    finally:
        await client.disconnect()
    lines = [
        f"# {len(variables)} variables on {config.endpoint}",
        "opcua:",
        f"  - endpoint: {config.endpoint}",
        "    sampling_interval: 100ms",
        "    measurement: machine",
        "    path_tags: [line, station]",
        *_security_lines(config),
        "    nodes:",
    ]
    for node_id, path, type_name in variables:
        lines.append(f"      - {_quoted(node_id)}  # Objects/{'/'.join(path)} ({type_name})")
    return "\n".join(lines) + "\n"


def _security_lines(config: OpcUaSource) -> list[str]:
    if config.policy == "None":
        lines = [
            "    # no security: prefer Basic256Sha256 or Aes256_Sha256_RsaPss with a certificate",
            "    security_policy: None",
            "    security_mode: None",
        ]
    else:
        lines = [
            f"    security_policy: {config.policy}",
            f"    security_mode: {config.message_mode}",
            f"    certificate: {_quoted(_absolute(config.certificate))}",
            f"    private_key: {_quoted(_absolute(config.private_key))}",
        ]
        if config.server_certificate:
            lines.append(f"    server_certificate: {_quoted(_absolute(config.server_certificate))}")
        lines.append(f"    application_uri: {_quoted(config.application_uri)}  # as in the certificate")
    if config.username is not None:
        lines += [f"    username: {_quoted(config.username)}", f"    password: ${{{PASSWORD_VARIABLE}}}"]
    return lines


def _absolute(name: str | None) -> str:
    return str(Path(name or "").expanduser().resolve())


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)

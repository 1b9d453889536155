"""A small OPC UA server for the connector tests: `python opcua_server.py PORT [PERIOD_S]`.

Objects/Line1/<Station>/{State, PartsProduced, Temperature} under namespace urn:fabbrica:test,
values changing every PERIOD_S with source timestamps, and historized in memory (HistoryRead
answers what a client missed while it had no session). Each value written is also appended to
the file in $TRUTH_FILE (one JSON line per change) so tests can compare what landed.

With PERIOD_S 0 nothing changes by itself: the test writes values through stdin, one JSON
line each, `{"station": "Saw", "name": "Temperature", "value": 1.5, "source": ISO, "server": ISO}`
(timestamps optional, null: none), and the server answers `ok` once the value is written.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

URI = "urn:fabbrica:test"
STATIONS = ("Saw", "Press", "Oven")


class _Users(UserManager):
    """One user, operator, with the password in $PLC_PASSWORD."""

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == "operator" and password == os.environ["PLC_PASSWORD"]:
            return User(role=UserRole.User)
        return None


async def main(port: int, period: float) -> None:
    secure = bool(os.environ.get("PLC_CERT"))
    server = Server(user_manager=_Users() if secure else None)
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_server_name("fabbrica test PLC")
    if secure:  # Basic256Sha256 SignAndEncrypt only, username and password required
        await server.load_certificate(os.environ["PLC_CERT"])
        await server.load_private_key(os.environ["PLC_KEY"])
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        server.set_identity_tokens([ua.UserNameIdentityToken])
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace(URI)
    line = await server.nodes.objects.add_object(ua.NodeId("Line1", ns), ua.QualifiedName("Line1", ns))
    variables = []
    for station in STATIONS:
        obj = await line.add_object(ua.NodeId(f"Line1.{station}", ns), ua.QualifiedName(station, ns))
        for name, initial, kind in (
            ("State", 0, ua.VariantType.Int32),
            ("PartsProduced", 0, ua.VariantType.UInt32),
            ("Temperature", 20.0, ua.VariantType.Double),
        ):
            node = await obj.add_variable(
                ua.NodeId(f"Line1.{station}.{name}", ns),
                ua.QualifiedName(name, ns),
                ua.Variant(initial, kind),
            )
            variables.append((station, name, kind, node))
    truth = open(os.environ["TRUTH_FILE"], "a") if os.environ.get("TRUTH_FILE") else None  # noqa: SIM115
    start = int(os.environ.get("START_COUNT", "0"))
    async def show(step: int) -> None:
        now = datetime.now(UTC)
        for station, name, kind, node in variables:
            value = {"State": step % 3, "PartsProduced": step, "Temperature": 20.0 + step / 10}[name]
            shown = ua.DataValue(ua.Variant(value, kind), SourceTimestamp=now, ServerTimestamp=now)
            await node.write_value(shown)
            if truth is not None:
                record = {"station": station, "name": name, "value": value, "ts": now.isoformat()}
                truth.write(json.dumps(record) + "\n")
        if truth is not None:
            truth.flush()

    async with server:
        if period > 0:  # a (re)started PLC first shows the values at START_COUNT, newly stamped
            await show(start)
        for _, _, _, node in variables:
            await server.historize_node_data_change(node, period=None, count=100_000)
        print("ready", flush=True)
        if period <= 0:
            await _commands(
                server, {(station, name): (node, kind) for station, name, kind, node in variables}
            )
            return
        step = start
        while True:
            await asyncio.sleep(period)
            step += 1
            await show(step)


async def _commands(server: Server, nodes: dict[tuple[str, str], tuple[Any, ua.VariantType]]) -> None:
    """Write the values the test sends on stdin, with the timestamps it gives, until stdin closes."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        node, kind = nodes[command["station"], command["name"]]
        stamps = {key: command.get(key) for key in ("source", "server")}
        value = ua.DataValue(
            ua.Variant(command["value"], kind),
            SourceTimestamp=datetime.fromisoformat(stamps["source"]) if stamps["source"] else None,
            ServerTimestamp=datetime.fromisoformat(stamps["server"]) if stamps["server"] else None,
        )
        await server.write_attribute_value(node.nodeid, value)  # as written: no server timestamp forced
        print("ok", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.1))

"""The virtual PLCs against a real asyncua client: browse, read, subscribe, call methods, a PLC per cell."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua

from simulations.hardware.config import HardwareConfig
from simulations.hardware.serve import ServedLine, serve
from tests.hardware.conftest import FAST_LINE, free_port, free_ports
from twin.line import line_from_dict
from twin.station import STATE_NAMES

NAMESPACE = "urn:fabbrica:pilot-line"
COUNTERS = ("PartsProduced", "PartsScrapped", "State")
OPERATOR, PASSWORD = "operator", "s3cret"


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Collector:
    """asyncua subscription handler: every notification as (variable, station, value, source timestamp)."""

    def __init__(self, names: dict[Any, tuple[str, str]]) -> None:
        self.names = names
        self.seen: dict[tuple[str, str], list[tuple[datetime, Any]]] = defaultdict(list)

    def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        station, variable = self.names[node.nodeid]
        datavalue = data.monitored_item.Value
        assert datavalue.StatusCode.is_good()
        self.seen[station, variable].append((_utc(datavalue.SourceTimestamp), value))

    def status_change_notification(self, status: Any) -> None:
        raise AssertionError(f"subscription status changed: {status}")


def _config(tmp_path: Path, port: int, **opcua: Any) -> HardwareConfig:
    return HardwareConfig.model_validate(
        {
            "speed": 200,
            "tick": 0.02,
            "opcua": {
                "endpoint": f"opc.tcp://127.0.0.1:{port}",
                # an operator may call Start/Stop, here over the unsecured endpoint
                # (test_setpoints.py checks the refusals); anyone else reads
                "security": {
                    "policies": ["None"],
                    "pki_dir": str(tmp_path / "pki"),
                    "users": {OPERATOR: PASSWORD},
                    "operators": [OPERATOR],
                    "allow_anonymous": True,
                    "write_security": "None",
                },
                **opcua,
            },
            "mqtt": {"enabled": False},
        }
    )


async def _station_nodes(client: Client, line: str) -> dict[str, Node]:
    ns = await client.get_namespace_index(NAMESPACE)
    line_node = await client.nodes.objects.get_child(f"{ns}:{line}")
    stations = {}
    for child in await line_node.get_children(nodeclassmask=ua.NodeClass.Object):
        stations[(await child.read_browse_name()).Name] = child
    return stations


def test_asyncua_client_browses_subscribes_calls_and_counters_match_the_truth(tmp_path: Path) -> None:
    line = line_from_dict(FAST_LINE)
    port = free_port()
    config = _config(tmp_path, port)
    truth_file = tmp_path / "truth.json"

    async def scenario() -> tuple[dict[str, Any], Collector, dict[str, Any]]:
        ready = asyncio.Event()
        served: list[ServedLine] = []

        def on_ready(line_served: ServedLine) -> None:
            served.append(line_served)
            ready.set()

        task = asyncio.create_task(
            serve(line, config, duration=6, truth=truth_file, on_ready=on_ready, handle_signals=False)
        )
        await asyncio.wait_for(ready.wait(), 30)
        checks: dict[str, Any] = {}
        operator = Client(f"opc.tcp://127.0.0.1:{port}")
        operator.set_user(OPERATOR)
        operator.set_password(PASSWORD)
        async with operator as client:
            ns = await client.get_namespace_index(NAMESPACE)
            stations = await _station_nodes(client, "pilot")
            assert list(stations) == ["cut", "weld", "pack"]
            cut = stations["cut"]
            members = {(await node.read_browse_name()).Name for node in await cut.get_children()}
            assert {
                "State",
                "StateName",
                "MachineryItemState",
                "PackMLState",
                "PartsProduced",
                "PartsScrapped",
                "LastCycleTime",
                "SpindleSpeed",
                "Temperature",
                "Power",
                "Start",
                "Stop",
                "Reset",
            } <= members
            assert "Machine1State" not in members  # a single machine's state is the station's
            speed = await client.get_node(ua.NodeId("pilot.Speed", ns)).read_value()
            assert speed == 200.0

            names = {}
            nodes = []
            for station, node in stations.items():
                for variable in COUNTERS:
                    child = await node.get_child(f"{ns}:{variable}")
                    names[child.nodeid] = (station, variable)
                    nodes.append(child)
            for variable in ("Machine1State", "Machine2State"):  # pack has two machines
                child = await stations["pack"].get_child(f"{ns}:{variable}")
                names[child.nodeid] = ("pack", variable)
                nodes.append(child)
            collector = Collector(names)
            subscription = await client.create_subscription(50, collector)
            await subscription.subscribe_data_change(nodes, queuesize=1000)

            await asyncio.sleep(1.0)
            weld = stations["weld"]
            await weld.call_method(f"{ns}:Stop")
            state = await weld.get_child(f"{ns}:State")
            for _ in range(100):
                if await state.read_value() == 5:
                    break
                await asyncio.sleep(0.05)
            checks["stopped"] = await state.read_value()
            checks["stopped_name"] = await (await weld.get_child(f"{ns}:StateName")).read_value()
            checks["stopped_packml"] = await (await weld.get_child(f"{ns}:PackMLState")).read_value()
            await asyncio.sleep(0.3)
            await weld.call_method(f"{ns}:Start")

            spindle = await (await cut.get_child(f"{ns}:SpindleSpeed")).read_data_value()
            checks["spindle"] = spindle
            # HistoryRead: every value the PLC showed so far, from the line's own record
            produced = await cut.get_child(f"{ns}:PartsProduced")
            historizing = await produced.read_attribute(ua.AttributeIds.Historizing)
            checks["historizing"] = historizing.Value.Value
            history = await produced.read_raw_history(datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC))
            checks["history"] = [(_utc(dv.SourceTimestamp), dv.Value.Value) for dv in history]
            states = await (await cut.get_child(f"{ns}:StateName")).read_raw_history(
                datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC)
            )
            checks["state_history"] = [(_utc(dv.SourceTimestamp), dv.Value.Value) for dv in states]
            while not truth_file.exists():  # written at the end of the run, before the servers stop
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the last notifications (the servers linger for a second)
        await task
        record = json.loads(truth_file.read_text())
        return record, collector, checks

    record, collector, checks = asyncio.run(scenario())

    assert checks["stopped"] == 5 and checks["stopped_name"] == "stopped" and checks["stopped_packml"] == 2
    assert checks["historizing"] is True
    cut_truth = record["stations"]["cut"]
    produced_truth = [(_parse(v["ts"]), v["value"]) for v in cut_truth["values"]["PartsProduced"]]
    assert len(checks["history"]) > 5
    assert checks["history"] == produced_truth[: len(checks["history"])]
    state_truth = [(_parse(s["ts"]), STATE_NAMES[s["state"]]) for s in cut_truth["states"]]
    assert checks["state_history"] == state_truth[: len(checks["state_history"])]
    spindle = checks["spindle"]
    assert spindle.StatusCode.is_good() and spindle.Value.VariantType == ua.VariantType.Double
    start, end = _parse(record["start"]), _parse(record["end"])
    assert start <= _utc(spindle.SourceTimestamp) <= end

    assert record["format"] == "fabbrica-truth/1" and record["simulated_s"] == 6 * 200
    assert [(c["command"], c["user"]) for c in record["stations"]["weld"]["commands"]] == [
        ("Stop", OPERATOR),
        ("Start", OPERATOR),
    ]
    for station, truth in record["stations"].items():
        assert truth["parts_produced"] > 10, station
        for variable in ("PartsProduced", "PartsScrapped"):
            expected = [(_parse(v["ts"]), v["value"]) for v in truth["values"][variable]]
            seen = collector.seen[station, variable]
            final = expected[-1][1] if expected else 0
            assert (
                seen[-1][1]
                == final
                == truth["parts_produced" if variable == "PartsProduced" else "parts_scrapped"]
            )
            # every value after the subscription started reached the client, with the truth's timestamp
            first = seen[0][0]
            assert [entry for entry in expected if entry[0] > first] == [entry for entry in seen[1:]], (
                station,
                variable,
            )
        for variable in ("Machine1State", "Machine2State") if station == "pack" else ():
            expected = [(_parse(v["ts"]), v["value"]) for v in truth["values"][variable]]
            seen = collector.seen[station, variable]
            assert len(expected) > 10 and {value for _, value in expected} >= {0, 2}  # working, starved
            assert [entry for entry in expected if entry[0] > seen[0][0]] == seen[1:], variable
        states = [(_parse(s["ts"]), s["state"]) for s in truth["states"]]
        seen_states = collector.seen[station, "State"]
        assert [s for s in states if s[0] > seen_states[0][0]] == seen_states[1:], station
        assert all(start <= ts <= end for ts, _ in states)


def test_one_server_per_station_on_consecutive_ports(tmp_path: Path) -> None:
    two = {**FAST_LINE, "stations": FAST_LINE["stations"][:2]}
    line = line_from_dict(two)
    port = free_ports(2)
    config = _config(tmp_path, port, server_per_station=True)

    async def scenario() -> dict[str, list[str]]:
        served: list[ServedLine] = []
        task = asyncio.create_task(
            serve(line, config, duration=30, on_ready=served.append, handle_signals=False)
        )
        while not served:
            if task.done():  # it could not start (a port taken): its error, not a hang to the timeout
                await task
            await asyncio.sleep(0.05)
        found = {}
        for offset in (0, 1):
            endpoint = f"opc.tcp://127.0.0.1:{port + offset}"
            async with Client(endpoint) as client:
                found[endpoint] = list(await _station_nodes(client, "pilot"))
        served[0].stop.set()
        record = await task
        assert record["opcua"]["endpoints"] == list(found)
        return found

    found = asyncio.run(scenario())
    assert found == {f"opc.tcp://127.0.0.1:{port}": ["cut"], f"opc.tcp://127.0.0.1:{port + 1}": ["weld"]}

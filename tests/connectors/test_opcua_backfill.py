"""Backfill from an OPC UA server's history (connectors/opcua/backfill.py) against a real asyncua
server, the test PLC of tests/connectors/opcua_server.py, whose values the test writes itself.

The checkpoint's origin is the instant the source first ran with its spool: a variable without a
time of its own is read from there, so what the PLC showed before the first subscription existed
(the connector was slow to connect, or was killed before its first checkpoint) is kept, and
nothing the PLC showed before the connector ever ran is imported.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import ua

from connectors.opcua.backfill import Checkpoint, backfill
from connectors.opcua.client import Target, make_client, resolve
from connectors.opcua.config import OpcUaSource

from .manual_plc import node_id


def _read_back(url: str, checkpoint: Checkpoint) -> list[float]:
    """Connect, resolve Press/Temperature and backfill it from `checkpoint`: the values taken."""
    config = OpcUaSource.model_validate(
        {"endpoint": url, "security_policy": "None", "nodes": [node_id("Press", "Temperature")]}
    )
    taken: list[float] = []

    def take(target: Target, data_value: ua.DataValue) -> None:
        taken.append(data_value.Value.Value)

    async def main() -> None:
        client = make_client(config)
        await client.connect()
        try:
            targets, problems = await resolve(client, config)
            assert not problems and len(targets) == 1
            filled = await backfill(
                targets,
                dict(checkpoint.stamps),
                datetime.now(UTC),
                timedelta(hours=1),
                take,
                origin=checkpoint.origin,
            )
            assert filled.read == 1 and not filled.failed
        finally:
            await client.disconnect()

    asyncio.run(main())
    return taken


def _after(stamp: datetime) -> None:
    """Wait until `stamp` has passed: a backfill reads history up to now, and these stamps lie
    a few milliseconds after the checkpoint's origin, which is now."""
    time.sleep(max(0.0, (stamp - datetime.now(UTC)).total_seconds()) + 0.01)


def test_a_first_connect_reads_back_what_the_plc_showed_since_the_source_first_ran(
    manual_server, tmp_path: Path
):
    before = datetime.now(UTC) - timedelta(seconds=5)
    manual_server.write("Press", "Temperature", 1.0, before, before)  # before the source ever ran
    checkpoint = Checkpoint(tmp_path / "spool", "source")  # the first run: no checkpoint file yet
    origin = datetime.fromtimestamp(checkpoint.origin / 1e9, tz=UTC)
    # the connector is still connecting; the PLC goes on
    for index, value in enumerate((2.0, 3.0, 4.0)):
        stamp = origin + timedelta(milliseconds=10 * (index + 1))
        manual_server.write("Press", "Temperature", value, stamp, stamp)
    _after(stamp)
    assert _read_back(manual_server.url, checkpoint) == [2.0, 3.0, 4.0]


def test_the_origin_survives_a_kill_before_the_first_checkpoint(manual_server, tmp_path: Path):
    first = Checkpoint(tmp_path / "spool", "source")
    assert first.path.exists()  # written at once, before any value is taken
    again = Checkpoint(tmp_path / "spool", "source")
    assert again.origin == first.origin and again.stamps == {}
    stamp = datetime.fromtimestamp(first.origin / 1e9, tz=UTC) + timedelta(milliseconds=5)
    manual_server.write("Press", "Temperature", 7.5, stamp, stamp)
    _after(stamp)
    assert _read_back(manual_server.url, again) == [7.5]


def test_a_variable_with_a_checkpoint_is_read_after_it_only(manual_server, tmp_path: Path):
    checkpoint = Checkpoint(tmp_path / "spool", "source")
    origin = datetime.fromtimestamp(checkpoint.origin / 1e9, tz=UTC)
    stamps = [origin + timedelta(milliseconds=10 * (index + 1)) for index in range(3)]
    for value, stamp in zip((1.0, 2.0, 3.0), stamps, strict=True):
        manual_server.write("Press", "Temperature", value, stamp, stamp)
    checkpoint.durable({"Line1/Press/Temperature": int(stamps[0].timestamp() * 1e6) * 1000})
    reloaded = Checkpoint(tmp_path / "spool", "source")
    assert reloaded.origin == checkpoint.origin
    _after(stamps[-1])
    assert _read_back(manual_server.url, reloaded) == [2.0, 3.0]


def test_a_checkpoint_file_of_the_older_flat_form_still_loads(tmp_path: Path):
    first = Checkpoint(tmp_path, "source")
    first.path.write_text(json.dumps({"Line1/Press/Temperature": 2_000, "Line1/Saw/State": 1_000}))
    loaded = Checkpoint(tmp_path, "source")
    assert loaded.stamps == {"Line1/Press/Temperature": 2_000, "Line1/Saw/State": 1_000}
    assert loaded.origin == 1_000

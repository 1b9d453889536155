"""Two connectors in one MQTT shared subscription group (`$share/GROUP/filter`), real Mosquitto,
both writing into the same InfluxDB 1.x database: how a plant outgrows one connector.

Each member tags its points with `member` (a static topic tag), so a message stored by both
members would be two rows, not one overwritten point; the stored (topic, time, value) triples
are compared with those published. Mosquitto 2 (measured with 2.0.11) gives each message of a
shared subscription to one member in turn and keeps a member's turn while it is away with a
persistent session: its share waits in its session and reaches it when it is back.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.mqtt.config import Topic

from .conftest import Publisher, influx_rows, wait_until

BASE_NS = 1_700_000_000_000_000_000


def _member(mosquitto: Any, influxdb: Any, database: str, group: str, index: int) -> dict[str, Any]:
    topic = {"filter": f"$share/{group}/factory/+/+/+", "format": "json", "tags": {"member": f"m{index}"}}
    return {
        "name": f"member{index}",
        "sink": {"type": "influxdb1", "url": influxdb.url, "database": database, "flush_interval": "0.2s"},
        "spool": {"path": f"spool{index}"},
        "mqtt": [{"url": mosquitto.url, "client_id": f"{group}-m{index}", "topics": [topic]}],
    }


def _start_members(mosquitto, influxdb, write_config, connector_factory, database, group):
    members = []
    for index in range(2):
        path = write_config(_member(mosquitto, influxdb, database, group, index), f"member{index}.yaml")
        member = connector_factory(path)
        member.log = path.parent / f"member{index}.log"
        members.append(member.start())
    for member in members:
        wait_until(lambda member=member: "connected as" in member.output())
    return members


def _publish(publisher: Publisher, start: int, count: int, rate: float) -> set[tuple[str, int, float]]:
    """Messages with a unique value and time each, over 5 stations x 2 sensors; what was sent."""
    sent = set()
    began = time.monotonic()
    for index in range(start, start + count):
        topic = f"factory/LS/S{index % 5}/{('energy', 'power')[index % 2]}"
        stamp = BASE_NS + index * 1_000_000
        publisher.publish(topic, json.dumps({"ts": stamp, "value": float(index), "unit": "kWh"}))
        sent.add((topic, stamp, float(index)))
        ahead = (index - start + 1) / rate - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)
    return sent


def _stored(influxdb: Any, database: str) -> list[tuple[str, int, float, str]]:
    """(topic, time, value, member) of every stored sensor row."""
    return [
        (f"factory/{row['line']}/{row['station']}/{row['sensor']}", row["time"], row["value"], row["member"])
        for row in influx_rows(influxdb.url, database, "sensor", "\"line\" = 'LS'")
    ]


def _points_in(influxdb: Any, database: str) -> dict[str, int]:
    taken: dict[str, int] = {}
    for row in influx_rows(influxdb.url, database, "connector_health"):
        taken[row["connector"]] = max(taken.get(row["connector"], 0), row["points_in"])
    return taken


def test_two_members_store_every_message_exactly_once(mosquitto, influxdb, write_config, connector_factory):
    database = f"share_{uuid.uuid4().hex[:6]}"
    group = f"g{uuid.uuid4().hex[:6]}"
    members = _start_members(mosquitto, influxdb, write_config, connector_factory, database, group)
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    sent = _publish(publisher, 0, 3000, rate=3000)
    publisher.close()  # every message acknowledged by the broker (QoS 1)
    wait_until(lambda: len(_stored(influxdb, database)) >= len(sent), timeout=40)
    for member in members:
        assert member.stop() == 0
    stored = _stored(influxdb, database)
    assert Counter((topic, stamp, value) for topic, stamp, value, _ in stored) == Counter(sent)
    shares = Counter(member for *_, member in stored)
    assert set(shares) == {"m0", "m1"} and all(count > 0 for count in shares.values())
    # No redelivery either: each member took in exactly what it stored (a second copy of a
    # message at the same member would overwrite its point and hide in the rows).
    assert _points_in(influxdb, database) == {"member0": shares["m0"], "member1": shares["m1"]}


def test_a_killed_member_keeps_its_share_until_it_is_back(
    mosquitto, influxdb, write_config, connector_factory
):
    """kill -9 of one member mid-stream, persistent sessions (the default).

    Mosquitto does not hand the dead member's messages to the other one: new messages keep
    going to the dead member's session in turn, and what it had not acknowledged stays there.
    Nothing is lost, but that share is late until the member is back (or lost if its session
    expires first, `session_expiry`).
    """
    database = f"kill_{uuid.uuid4().hex[:6]}"
    group = f"g{uuid.uuid4().hex[:6]}"
    members = _start_members(mosquitto, influxdb, write_config, connector_factory, database, group)
    publisher = Publisher(mosquitto.port, f"pub-{uuid.uuid4().hex[:6]}")
    sent: set[tuple[str, int, float]] = set()
    sender = threading.Thread(target=lambda: sent.update(_publish(publisher, 0, 3000, rate=1500)))
    sender.start()
    time.sleep(0.7)
    members[1].kill()
    sender.join()
    publisher.close()
    # The survivor stores what reaches it; the dead member's share waits at the broker.
    settled = wait_until(lambda: _settled(influxdb, database), timeout=30)
    assert settled < len(sent), "the broker gave the dead member's share to the other member"
    members[1].start()
    wait_until(lambda: len({row[:3] for row in _stored(influxdb, database)}) >= len(sent), timeout=40)
    for member in members:
        assert member.stop() == 0
    stored = _stored(influxdb, database)
    assert Counter((topic, stamp, value) for topic, stamp, value, _ in stored) == Counter(sent)
    assert all(count > 0 for count in Counter(member for *_, member in stored).values())


def _settled(influxdb: Any, database: str) -> int:
    """The stored row count once it has not changed for a second (0 while it still changes)."""
    before = len(_stored(influxdb, database))
    time.sleep(1.0)
    after = len(_stored(influxdb, database))
    return after if after == before and after > 0 else 0


@pytest.mark.parametrize("bad", ["$share/", "$share/g", "$share//a/b", "$share/g+/a", "$share/g/"])
def test_a_malformed_shared_subscription_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="GROUP/FILTER"):
        Topic(filter=bad)


def test_a_shared_subscription_matches_the_real_topic() -> None:
    topic = Topic(filter="$share/connectors/factory/+/+/+")
    assert topic.match_filter == "factory/+/+/+"

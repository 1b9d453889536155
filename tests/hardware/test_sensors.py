"""The virtual sensors against a real Mosquitto broker: every message counted against the truth."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulations.hardware.config import HardwareConfig
from simulations.hardware.serve import serve
from tests.hardware.conftest import FAST_LINE, ROOT, Mosquitto, SecureBroker
from twin.line import line_from_dict

SENSORS = {
    "mqtt": {
        "connect_timeout": 10,  # the QoS 0 sensor's first samples wait for the connection
        "sensors": [
            {
                "name": "energy",
                "unit": "kWh",
                "levels": {"working": 7.5},
                "idle": 1.0,
                "integrate": True,
                "rate": 5,
            },
            {
                "name": "vibration",
                "unit": "mm/s",
                "levels": {"working": 4.0},
                "idle": 0.2,
                "noise": 0.3,
                "rate": 10,
            },
            {"name": "ambient", "unit": "degC", "idle": 22.0, "noise": 0.1, "rate": 1, "qos": 0},
        ]
    }
}


class Subscriber:
    """A plain paho subscriber that keeps every message it receives, per topic."""

    def __init__(self, port: int, topic: str, *, client_id: str, persistent: bool = False) -> None:
        self.messages: dict[str, list[bytes]] = defaultdict(list)
        self.subscribed = threading.Event()
        self.connects = 0
        self.topic = topic
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK from the broker"

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connects += 1
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages[message.topic].append(message.payload)

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Wait until no message arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        count = -1
        while time.monotonic() < deadline:
            now = sum(len(v) for v in self.messages.values())
            if now == count:
                return
            count = now
            time.sleep(quiet)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _parse(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_sensor_message_and_part_event_reaches_a_subscriber(
    broker: Mosquitto, write_yaml: Callable[[str, dict[str, Any]], Path], tmp_path: Path
) -> None:
    line = write_yaml("line.yaml", FAST_LINE)
    hardware = write_yaml("hardware.yaml", SENSORS)
    truth_file = tmp_path / "truth.json"
    subscriber = Subscriber(broker.port, "factory/pilot/#", client_id="test-counter")
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "fabbrica",
                "line",
                "serve",
                str(line),
                "--speed",
                "100",
                "--opcua",
                "none",
                "--mqtt",
                broker.url,
                "--duration",
                "4s",
                "--seed",
                "11",
                "--hardware",
                str(hardware),
                "--truth",
                str(truth_file),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("serving line pilot at speed 100: mqtt://127.0.0.1:")
        subscriber.settle()
    finally:
        subscriber.close()
    truth = json.loads(truth_file.read_text())
    assert truth["seed"] == 11 and truth["simulated_s"] == 400
    start, end = _parse(truth["start"]), _parse(truth["end"])
    for station, record in truth["stations"].items():
        messages = record["messages"]
        assert set(messages) == {"energy", "vibration", "ambient", "events"}
        for sensor, counts in messages.items():
            received = subscriber.messages[f"factory/pilot/{station}/{sensor}"]
            assert counts["dropped"] == 0
            assert len(received) == counts["published"], (station, sensor)
        # a sensor at 10 Hz for 4 s of wall time, whatever the speed
        assert messages["vibration"]["published"] == 40
        energy = [json.loads(payload) for payload in subscriber.messages[f"factory/pilot/{station}/energy"]]
        assert all(sample["unit"] == "kWh" and start <= _parse(sample["ts"]) <= end for sample in energy)
        readings = [sample["value"] for sample in energy]
        assert readings == sorted(readings) and readings[-1] > 0, "an energy meter only counts up"
        events = [json.loads(payload) for payload in subscriber.messages[f"factory/pilot/{station}/events"]]
        expected = [{key: value for key, value in part.items() if key != "t"} for part in record["parts"]]
        assert events == expected
        assert events[-1]["parts_produced"] == record["parts_produced"]


def test_the_publisher_reconnects_after_a_broker_restart(own_broker: Mosquitto, tmp_path: Path) -> None:
    line = line_from_dict(FAST_LINE)
    config = HardwareConfig.model_validate(
        {"speed": 50, "opcua": {"enabled": False}, "mqtt": {"url": own_broker.url, **SENSORS["mqtt"]}}
    )
    qos1 = [spec.name for spec in config.mqtt.sensors if spec.qos > 0] + ["events"]
    subscriber = Subscriber(own_broker.port, "factory/pilot/#", client_id="test-persistent", persistent=True)

    restarted: list[float] = []

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(serve(line, config, duration=6, handle_signals=False))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(own_broker.restart, 0.5)
        restarted.append(time.time())
        return await task

    try:
        truth = asyncio.run(scenario())
        subscriber.settle(quiet=1.0)
    finally:
        subscriber.close()
    assert truth["mqtt"]["connects"] >= 2 and truth["mqtt"]["disconnects"] >= 1
    assert subscriber.connects >= 2
    late = 0
    for station, record in truth["stations"].items():
        for sensor in qos1:
            received = set(subscriber.messages[f"factory/pilot/{station}/{sensor}"])
            counts = record["messages"][sensor]
            # QoS 1 through a restart: nothing the broker acknowledged is lost (duplicates may come)
            assert counts["dropped"] == 0, (station, sensor)
            assert len(received) == counts["published"], (station, sensor)
            late += sum(
                1 for payload in received if _parse(json.loads(payload)["ts"]).timestamp() > restarted[0]
            )
    assert late > 0, "publishing went on after the restart"


def test_tls_and_a_password_towards_the_broker(secure_broker: SecureBroker) -> None:
    line = line_from_dict({**FAST_LINE, "stations": FAST_LINE["stations"][:1]})
    port = secure_broker.broker.port
    counted: dict[str, int] = defaultdict(int)
    subscribed = threading.Event()
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-counter")
    subscriber.username_pw_set(secure_broker.user, secure_broker.password)
    subscriber.tls_set(ca_certs=str(secure_broker.ca_file))
    subscriber.on_connect = lambda client, *args: client.subscribe("factory/#", qos=1)
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.on_message = lambda client, userdata, message: counted.__setitem__(
        message.topic, counted[message.topic] + 1
    )
    subscriber.connect("127.0.0.1", port)
    subscriber.loop_start()

    def run(url: str) -> dict[str, Any]:
        config = HardwareConfig.model_validate(
            {
                "speed": 20,
                "opcua": {"enabled": False},
                "mqtt": {
                    "url": url,
                    "tls": {"ca_file": str(secure_broker.ca_file)},
                    "connect_timeout": 2,
                    "drain_timeout": 1,
                },
            }
        )
        return asyncio.run(serve(line, config, duration=1.5, handle_signals=False))

    try:
        assert subscribed.wait(10)
        good = run(f"mqtts://fab:s3cret@127.0.0.1:{port}")
        refused = run(f"mqtts://fab:wrong@127.0.0.1:{port}")
        time.sleep(0.5)
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()
    assert good["mqtt"]["url"] == f"mqtts://127.0.0.1:{port}" and good["mqtt"]["connects"] == 1
    published = {topic: counts["published"] for topic, counts in good["mqtt"]["topics"].items()}
    assert sum(published.values()) > 0
    assert {topic: counted[topic] for topic in published} == published
    assert refused["mqtt"]["connects"] == 0
    assert all(counts["published"] == 0 for counts in refused["mqtt"]["topics"].values())


def _open_sockets() -> set[str]:
    """The sockets this process holds open (Linux: /proc/self/fd)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd of the listing itself is gone by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(f"{fd} {target}")
    return found


@pytest.mark.parametrize("password", ["s3cret", "wrong"])
def test_a_stopped_publisher_leaves_no_socket_open(secure_broker: SecureBroker, password: str) -> None:
    """Once serve() returns, the MQTT client's sockets are closed, not left to the garbage
    collector: collected in a cycle, paho's sockets could be finalized before the client that
    closes them, an 'unclosed socket' ResourceWarning (an error in this suite)."""
    line = line_from_dict({**FAST_LINE, "stations": FAST_LINE["stations"][:1]})
    url = f"mqtts://fab:{password}@127.0.0.1:{secure_broker.broker.port}"
    config = HardwareConfig.model_validate(
        {
            "speed": 20,
            "opcua": {"enabled": False},
            "mqtt": {"url": url, "tls": {"ca_file": str(secure_broker.ca_file)}, "connect_timeout": 2},
        }
    )
    before = _open_sockets()
    gc.disable()  # what the collector would close later must already be closed
    try:
        asyncio.run(serve(line, config, duration=1.5, handle_signals=False))
        assert _open_sockets() - before == set()
    finally:
        gc.enable()

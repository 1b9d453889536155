"""Virtual sensors: every station's energy meter, vibration and ambient sensors publishing over MQTT.

Each sample goes to `<prefix>/<line>/<station>/<sensor>` as JSON
`{"ts": "2025-01-31T08:00:00.250000Z", "value": 1.25, "unit": "kWh"}` with the sensor's QoS;
each finished part goes to `<prefix>/<line>/<station>/events` as
`{"ts": ..., "product": "A", "cycle_time_s": 55.2, "scrapped": false,
"parts_produced": 12, "parts_scrapped": 0, "from": "lathe", "to": "test", "reworked": false}`
(`from`: the station that passed the part in, or `release`; `to`: the next station, `exit`,
or null when scrapped). `ts` is the UTC wall instant of the simulated instant, ISO 8601 with
microseconds.

One paho-mqtt client carries all of it. Its network thread reconnects by itself after
a broker restart (with a short back-off); QoS 1 and 2 messages published meanwhile
wait in its queue and go out after the reconnect, QoS 0 messages are dropped and
counted. Every topic counts the messages the broker acknowledged (`published`) and
those lost (`dropped`), for the truth file; with `truth_readings` it also keeps every
sample's `ts` and value (`readings`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from simulations.hardware.clock import ScaledClock
from simulations.hardware.config import MqttConfig
from simulations.hardware.runtime import LineRuntime

logger = logging.getLogger(__name__)

_FORBIDDEN = ("/", "+", "#")


@dataclass
class TopicStats:
    published: int = 0
    dropped: int = 0


def topic_level(name: str, what: str) -> str:
    """`name` as one MQTT topic level (refused if it holds a topic separator or wildcard)."""
    if not name or any(char in name for char in _FORBIDDEN):
        raise ValueError(f"{what} {name!r} cannot be an MQTT topic level (no '/', '+' or '#')")
    return name


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SensorPublisher:
    """Publishes the runtime's sensor samples and part events; `publish()` after every clock step."""

    def __init__(self, runtime: LineRuntime, config: MqttConfig, clock: ScaledClock) -> None:
        self.runtime = runtime
        self.config = config
        self.clock = clock
        line = topic_level(runtime.line.name, "line name")
        prefix = config.prefix.rstrip("/")
        self.units = {spec.name: spec.unit for spec in config.sensors}
        self.qos = {spec.name: spec.qos for spec in config.sensors}
        self.topics: dict[tuple[int, str], str] = {}
        self.stats: dict[str, TopicStats] = {}
        # sensor name -> [(ts, value)] per station index, when the truth keeps the readings
        self.readings: dict[int, dict[str, list[tuple[str, float]]]] | None = (
            {station.index: {name: [] for name in self.units} for station in runtime.stations}
            if config.truth_readings
            else None
        )
        for station in runtime.stations:
            base = f"{prefix}/{line}/{topic_level(station.name, 'station name')}"
            for name in [*self.units, "events"]:
                topic = f"{base}/{name}"
                self.topics[station.index, name] = topic
                self.stats[topic] = TopicStats()
        self.connected = threading.Event()
        self.connects = 0
        self.disconnects = 0
        self._closing = False
        self._lock = threading.Lock()
        self._pending: dict[int, str] = {}
        self._early: set[int] = set()
        client_id = config.client_id or f"fabbrica-line-{line}-{os.getpid()}"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
        )
        username, password = config.credentials
        if username is not None:
            client.username_pw_set(username, password)
        if config.use_tls:
            tls = config.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(tls.key_file) if tls and tls.key_file else None,
            )
            if tls is not None and tls.insecure:
                client.tls_insecure_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=4)
        client.max_inflight_messages_set(200)
        client.max_queued_messages_set(200_000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; the client keeps trying until the broker answers."""
        self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        self.client.loop_start()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the first connection (the line starts anyway after it)."""
        deadline = time.monotonic() + timeout
        while not self.connected.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.connected.is_set():
            logger.warning("MQTT broker %s:%d not reachable yet: publishing as soon as it is", *self._where)
        return self.connected.is_set()

    @property
    def _where(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    async def close(self) -> None:
        """Wait (up to drain_timeout) for the broker to acknowledge what is in flight, then disconnect."""
        # a broker never reached will not answer now either
        deadline = time.monotonic() + (self.config.drain_timeout if self.connects else 0.0)
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        with self._lock:
            unacknowledged = list(self._pending.values())
            self._pending.clear()
        for topic in unacknowledged:
            self.stats[topic].dropped += 1
        if unacknowledged:
            logger.warning("%d MQTT messages not acknowledged by the broker at exit", len(unacknowledged))
        self._closing = True
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        # paho closes its sockets (the pair that wakes its network thread, a connection a retry
        # was opening) only when the client is collected, which for this publisher, in a cycle
        # with its callbacks, can be after the sockets' own finalizers: an "unclosed socket"
        # ResourceWarning. reinitialise() is paho's public call that closes them now.
        self.client.reinitialise()

    # -- paho callbacks (network thread: must never raise) ------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("MQTT broker %s refused the connection: %s", self.config.host, reason)
            return
        self.connects += 1
        self.connected.set()
        logger.info("connected to the MQTT broker %s:%d", self.config.host, self.config.port)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()
        if self._closing:
            logger.info("disconnected from the MQTT broker")
            return
        self.disconnects += 1
        logger.warning("disconnected from the MQTT broker (%s): reconnecting", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            topic = self._pending.pop(mid, None)
            if topic is None:
                self._early.add(mid)
            else:
                self.stats[topic].published += 1

    # -- publishing ---------------------------------------------------------------------------
    def _send(self, topic: str, payload: str, qos: int) -> None:
        # never call paho holding our lock: paho holds its own while it calls _on_publish
        info = self.client.publish(topic, payload, qos=qos)
        queued = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
        )
        with self._lock:
            if not queued:
                self.stats[topic].dropped += 1
            elif info.mid in self._early:  # acknowledged before publish() returned
                self._early.discard(info.mid)
                self.stats[topic].published += 1
            else:
                self._pending[info.mid] = topic

    def publish(self) -> None:
        """Hand every sensor sample and part event produced since the last call to the client."""
        runtime = self.runtime
        epoch = self.clock.epoch
        samples = runtime.sensor_samples
        if samples:
            topics, units, qos, readings = self.topics, self.units, self.qos, self.readings
            for sample in samples:
                ts = iso_utc(epoch(sample.t))
                index = sample.station.index
                for name, value in zip(sample.names, sample.values.tolist(), strict=True):
                    payload = json.dumps({"ts": ts, "value": value, "unit": units[name]})
                    self._send(topics[index, name], payload, qos[name])
                    if readings is not None:
                        readings[index][name].append((ts, value))
            samples.clear()
        events = runtime.part_events
        if events:
            qos_events = self.config.events_qos
            for station, event in events:
                body = {"ts": iso_utc(epoch(event["t"]))}
                body.update((key, value) for key, value in event.items() if key != "t")
                self._send(self.topics[station.index, "events"], json.dumps(body), qos_events)
            events.clear()

    def pending(self) -> int:
        return len(self._pending)

    def summary(self) -> dict[str, Any]:
        return {
            "url": f"{'mqtts' if self.config.use_tls else 'mqtt'}://{self.config.host}:{self.config.port}",
            "prefix": self.config.prefix,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "topics": {
                topic: {"published": stats.published, "dropped": stats.dropped}
                for topic, stats in self.stats.items()
            },
        }

"""The MQTT source: subscribe to topic filters and turn every message into points.

paho-mqtt runs its network loop in its own thread; messages are handed to the asyncio loop in
batches. With QoS 1 and a persistent session (MQTT 5, clean start off, a session expiry), the
broker keeps what arrives while the connector is away, and a message is acknowledged only
after its points are in the spool (manual acknowledgement): a kill -9 loses nothing, the
broker sends again what was not acknowledged. After a reconnect every filter is subscribed
again. Unparsable payloads are counted and logged at a limited rate, and acknowledged (a bad
message sent again is still bad).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from connectors.common.backoff import Backoff, keep_running
from connectors.common.points import BadPoint, Point
from connectors.common.ratelog import RateLimitedLog
from connectors.mqtt.config import MqttSource, Topic
from connectors.mqtt.formats import json_points, number_points, sparkplug_points
from connectors.mqtt.sparkplug import SparkplugHost, rebirth_request
from connectors.pipeline import Pipeline

log = logging.getLogger(__name__)
Message = tuple[str, bytes, int, int, int]  # topic, payload, mid, qos, receive time (ns)
# CONNACK reasons for a bad or missing user/password: MQTT 3.1.1 codes 4 and 5, MQTT 5 134 and 135
_REFUSED_CREDENTIALS = frozenset({4, 5, 134, 135})


class MqttSourceRunner:
    """Runs one MQTT source against one pipeline."""

    def __init__(self, config: MqttSource, pipeline: Pipeline, base: Path | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.base = base  # relative TLS file paths start here (the config file's folder)
        self.name = f"mqtt {config.label}"
        self.client_id = config.client_id or default_client_id(pipeline.config.name, config)
        self.sparkplug = SparkplugHost()
        self.messages = 0
        self._routes: dict[str, Topic | None] = {}
        self._warn = RateLimitedLog(log)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(initial=0.5, maximum=self.config.reconnect_max)
        await keep_running(
            self.name,
            lambda: self._session(stop),
            backoff,
            stop,
            on_reconnect=self.pipeline.health.count_reconnect,
        )

    # -- one connection -------------------------------------------------------------------------

    def _client(self) -> mqtt.Client:
        config = self.config
        if config.protocol == "5":
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=not config.persistent_session,
                manual_ack=True,
            )
        if config.username is not None:
            client.username_pw_set(
                config.username, config.password.get_secret_value() if config.password else None
            )
        if config.tls:
            try:
                client.tls_set(
                    ca_certs=self._path(config.ca_file),
                    certfile=self._path(config.cert_file),
                    keyfile=self._path(config.key_file),
                    cert_reqs=ssl.CERT_NONE if config.insecure_skip_verify else ssl.CERT_REQUIRED,
                )
            except (OSError, ssl.SSLError) as exc:  # ssl names neither the file nor the field
                files = {
                    "ca_file": config.ca_file,
                    "cert_file": config.cert_file,
                    "key_file": config.key_file,
                }
                given = ", ".join(f"{key} {value}" for key, value in files.items() if value)
                raise ConnectionError(f"TLS: cannot load {given or 'the system CAs'}: {exc}") from None
            client.tls_insecure_set(config.insecure_skip_verify)
        return client

    def _path(self, name: str | None) -> str | None:
        if name is None or self.base is None or Path(name).is_absolute():
            return name
        return str(self.base / name)

    async def _connect(self, client: mqtt.Client, *args: Any, **kwargs: Any) -> None:
        """client.connect in a thread, with TLS failures said as such (they retry like any other)."""
        config = self.config
        try:
            await asyncio.to_thread(
                client.connect, config.host, config.port, config.keepalive, *args, **kwargs
            )
        except ssl.SSLCertVerificationError as exc:
            trusted = f"ca_file {config.ca_file}" if config.ca_file else "the system CAs"
            raise ConnectionError(
                f"TLS: the broker's certificate is not trusted by {trusted}: {exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectionError(f"TLS handshake with {config.host}:{config.port} failed: {exc}") from None

    async def _session(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        client = self._client()
        inbox: list[Message] = []
        lock = threading.Lock()
        wake = asyncio.Event()
        state: dict[str, Any] = {"connected": asyncio.Event(), "lost": asyncio.Event(), "error": None}

        def on_connect(client: mqtt.Client, _: Any, flags: Any, reason: ReasonCode, __: Any) -> None:
            if reason.is_failure:
                hint = " (check username and password)" if reason.value in _REFUSED_CREDENTIALS else ""
                state["error"] = f"connection refused by the broker: {reason}{hint}"
                loop.call_soon_threadsafe(state["lost"].set)
                return
            subscriptions = [(topic.filter, topic.qos) for topic in self.config.topics]
            client.subscribe(subscriptions)
            loop.call_soon_threadsafe(state["connected"].set)

        def on_disconnect(client: mqtt.Client, _: Any, flags: Any, reason: ReasonCode, __: Any) -> None:
            # a refused CONNACK is followed by a disconnect: keep the refusal, it says why
            state["error"] = state["error"] or f"disconnected: {reason}"
            loop.call_soon_threadsafe(state["lost"].set)

        def on_message(client: mqtt.Client, _: Any, message: mqtt.MQTTMessage) -> None:
            item = (message.topic, message.payload, message.mid, message.qos, time.time_ns())
            with lock:
                inbox.append(item)
                first = len(inbox) == 1
            if first:
                loop.call_soon_threadsafe(wake.set)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        if self.config.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = (
                int(self.config.session_expiry) if self.config.persistent_session else 0
            )
            properties.ReceiveMaximum = self.config.receive_maximum
            await self._connect(client, clean_start=not self.config.persistent_session, properties=properties)
        else:
            await self._connect(client)
        client.loop_start()
        try:
            await asyncio.wait_for(_first(state["connected"], state["lost"]), timeout=30)
            if state["lost"].is_set():
                raise ConnectionError(state["error"])
            log.info("%s: connected as %s", self.name, self.client_id)
            while True:
                if stop.is_set():
                    break
                done = await _first(wake, stop, state["lost"])
                wake.clear()
                with lock:
                    batch, inbox[:] = list(inbox), []
                if batch:
                    self._handle(client, batch)
                if done is state["lost"] and not stop.is_set():
                    raise ConnectionError(state["error"] or "connection lost")
        finally:
            with lock:
                batch, inbox[:] = list(inbox), []
            if batch:
                self._handle(client, batch)
            # Let the committer store and acknowledge the last batch before disconnecting.
            self.pipeline.commit()
            await asyncio.to_thread(client.disconnect)
            await asyncio.to_thread(client.loop_stop)

    # -- messages -> points ---------------------------------------------------------------------

    def _route(self, name: str) -> Topic | None:
        if name not in self._routes:
            if len(self._routes) > 100_000:
                self._routes.clear()
            self._routes[name] = next(
                (topic for topic in self.config.topics if mqtt.topic_matches_sub(topic.match_filter, name)),
                None,
            )
        return self._routes[name]

    def _handle(self, client: mqtt.Client, batch: list[Message]) -> None:
        points: list[Point] = []
        for name, payload, _mid, _qos, received in batch:
            self.messages += 1
            topic = self._route(name)
            if topic is None:
                continue
            try:
                if topic.format == "json":
                    points.extend(json_points(topic, name, payload, received))
                elif topic.format == "number":
                    points.extend(number_points(topic, name, payload, received))
                else:
                    points.extend(self._sparkplug(client, topic, name, payload, received))
            except Exception as exc:  # bad input is counted, never a crash
                reason = exc if isinstance(exc, BadPoint | ValueError) else repr(exc)
                self.pipeline.reject(f"{self.name} {name}: {reason}")
        acks = [(mid, qos) for _, _, mid, qos, _ in batch if qos > 0]
        self.pipeline.submit(points, ack=partial(_ack, client, acks) if acks else None)

    def _sparkplug(
        self, client: mqtt.Client, topic: Topic, name: str, payload: bytes, received: int
    ) -> list[Point]:
        try:
            decoded = self.sparkplug.decode(name, payload)
        except Exception as exc:  # protobuf's DecodeError and friends
            raise BadPoint(f"not a Sparkplug B payload: {exc}") from None
        if decoded is None:
            return []
        if decoded.rebirth and self.sparkplug.should_request_rebirth(decoded.group, decoded.edge_node):
            log.warning(
                "%s: %s/%s: %s; requesting rebirth",
                self.name,
                decoded.group,
                decoded.edge_node,
                decoded.rebirth,
            )
            client.publish(f"spBv1.0/{decoded.group}/NCMD/{decoded.edge_node}", rebirth_request(), qos=0)
        return sparkplug_points(topic, decoded, received)


def default_client_id(connector: str, config: MqttSource) -> str:
    """Stable across restarts (the broker keeps the persistent session under it): the connector's
    name and a digest of the broker URL and topic filters."""
    digest = hashlib.sha1("|".join([config.url, *(t.filter for t in config.topics)]).encode()).hexdigest()
    return f"{connector}-{digest[:12]}"[:128]


def _ack(client: mqtt.Client, acks: list[tuple[int, int]]) -> None:
    for mid, qos in acks:
        client.ack(mid, qos)


async def _first(*events: asyncio.Event) -> asyncio.Event:
    """Wait until one of the events is set; return it."""
    for event in events:
        if event.is_set():
            return event
    waiters: dict[asyncio.Future[Any], asyncio.Event] = {
        asyncio.ensure_future(event.wait()): event for event in events
    }
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return waiters[next(iter(done))]

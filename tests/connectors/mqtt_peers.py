"""MQTT peers for the security tests: the shipped Mosquitto (deploy/mosquitto) run with Debian's
mosquitto, and small paho clients that connect, subscribe and publish with or without TLS.

`ShippedBroker.start` runs deploy/mosquitto/entrypoint.sh itself: it writes the password file
from MQTT_LINE_PASSWORD and MQTT_CONNECTOR_PASSWORD and execs the broker. Only the paths, the
two listener ports (on 127.0.0.1) and, as root, `user root` differ from the shipped config;
the ACL gets one extra user, `probe`, who may read everything, so that the tests can see what
the broker really delivers. The certificates come from a CA the test makes
(`tests.hardware.conftest._broker_certificates`).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.hardware.conftest import _broker_certificates, _mosquitto_binary, free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
PROBE_ACL = "\n# test only: sees everything the broker delivers\nuser probe\ntopic read #\n"


def make_certificates(folder: Path) -> Path:
    """A test CA and a server certificate for 127.0.0.1, named as the shipped config wants them."""
    folder.mkdir(parents=True, exist_ok=True)
    made = _broker_certificates(folder)
    for source, name in zip(made, ("ca.crt", "server.crt", "server.key"), strict=True):
        source.rename(folder / name)
    return folder


def directives(text: str) -> list[str]:
    """The directive names of a Mosquitto config, in order."""
    return [line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#")]


def rewrite_config(text: str, *, port: int, tls_port: int, data: Path, deploy: Path, certs: Path) -> str:
    """The shipped config with its listeners on loopback ports and its paths in `data`/`deploy`/`certs`."""
    lines = []
    for line in text.splitlines():
        if line.strip() == "listener 1883":
            line = f"listener {port} 127.0.0.1"
        elif line.strip() == "listener 8883":
            line = f"listener {tls_port} 127.0.0.1"
        elif not line.startswith("#"):
            for shipped, here in (
                ("/mosquitto/data/", data),
                ("/mosquitto/certs/", certs),
                ("/fabbrica/", deploy),
            ):
                line = line.replace(shipped, f"{here}/")
        lines.append(line)
    if os.geteuid() == 0:
        lines.append(
            "user root"
        )  # as root, mosquitto would become `mosquitto`, who cannot read our temp folder
    rewritten = "\n".join(lines) + "\n"
    shipped_names = directives(text) + (["user"] if os.geteuid() == 0 else [])
    assert directives(rewritten) == shipped_names, "the rewrite must keep every directive"
    return rewritten


@dataclass
class ShippedBroker:
    folder: Path
    passwords: dict[str, str]
    certs: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def password_file(self) -> Path:
        return self.folder / "data" / "passwords"

    @property
    def ca_file(self) -> Path:
        return self.certs / "ca.crt"

    @property
    def log(self) -> Path:
        return self.folder / "mosquitto.log"

    def prepare(self) -> dict[str, str]:
        """Write the rewritten config and ACL; return the environment entrypoint.sh runs with."""
        data, deploy = self.folder / "data", self.folder / "fabbrica"
        data.mkdir(parents=True, exist_ok=True)
        deploy.mkdir(exist_ok=True)
        (deploy / "acl").write_text((DEPLOY / "acl").read_text() + PROBE_ACL)
        config = rewrite_config(
            (DEPLOY / "mosquitto.conf").read_text(),
            port=self.port,
            tls_port=self.tls_port,
            data=data,
            deploy=deploy,
            certs=self.certs,
        )
        (deploy / "mosquitto.conf").write_text(config)
        # the broker: Debian's mosquitto, after adding the probe user to the password file just written
        wrapper = self.folder / "mosquitto-with-probe"
        wrapper.write_text(
            "#!/bin/sh\nset -eu\n"
            'mosquitto_passwd -b "$MOSQUITTO_PASSWORD_FILE" probe "$PROBE_PASSWORD"\n'
            f'exec {_mosquitto_binary()} "$@"\n'
        )
        wrapper.chmod(0o755)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MQTT_LINE_PASSWORD": self.passwords["line"],
            "MQTT_CONNECTOR_PASSWORD": self.passwords["connector"],
            "PROBE_PASSWORD": self.passwords["probe"],
            "MOSQUITTO_CONFIG": str(deploy / "mosquitto.conf"),
            "MOSQUITTO_PASSWORD_FILE": str(self.password_file),
            "MOSQUITTO_CERTS": str(self.certs),
            "MOSQUITTO_BIN": str(wrapper),
        }

    def start(self) -> ShippedBroker:
        env = self.prepare()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["/bin/sh", str(ENTRYPOINT)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        try:
            wait_port(self.port)
            wait_port(self.tls_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"the shipped mosquitto did not start: {self.log.read_text()[-2000:]}"
            ) from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_shipped_broker(folder: Path, passwords: dict[str, str] | None = None) -> ShippedBroker:
    passwords = passwords or {name: f"{name}-{uuid.uuid4().hex}" for name in ("line", "connector", "probe")}
    if shutil.which("mosquitto_passwd") is None:
        _mosquitto_binary()  # skips (fails under CI) with the package to install
    return ShippedBroker(folder, passwords, make_certificates(folder / "certs")).start()


# -- clients ------------------------------------------------------------------------------------
class Client:
    """A paho MQTT 5 client that records its CONNACK, its subscriptions' messages and its disconnects."""

    def __init__(
        self,
        user: str | None = None,
        password: str | None = None,
        *,
        ca_file: Path | None = None,
        tls: bool = False,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:10]}", protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if tls or ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file) if ca_file else None)
        self.connack: Any = None
        self.closed = threading.Event()
        self.answered = threading.Event()
        self.subscribed = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: (self.closed.set(), self.answered.set())
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = lambda client, userdata, message: self.messages.append(
            (message.topic, message.payload)
        )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connack = reason
        self.answered.set()

    def connect(self, port: int, timeout: float = 10.0) -> str:
        """'ok', or why not: the CONNACK's reason, the TLS error, or 'closed' without a CONNACK."""
        # paho leaves the socket of a failed TLS handshake to the garbage collector
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                self.client.connect("127.0.0.1", port, keepalive=10)
            except (ssl.SSLError, OSError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                failure = None
            gc.collect()
        if failure is not None:
            return failure
        self.client.loop_start()
        if not self.answered.wait(timeout):
            return "no answer"
        if self.connack is None:
            return "closed"
        return "ok" if not self.connack.is_failure else str(self.connack)

    def subscribe(self, topic: str, timeout: float = 10.0) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(timeout), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: str = "x") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def received(self, topic: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(name == topic for name, _ in self.messages):
                return True
            time.sleep(0.02)
        return False

    def topics(self) -> list[str]:
        return [name for name, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

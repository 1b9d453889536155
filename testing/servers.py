"""Server processes on free loopback ports: Mosquitto, InfluxDB, a simulated PLC, the connector.

A `Service` is a command that listens on one port: start it (waiting until the port answers, or
failing with the tail of its log), stop it with a signal (killed if it lingers), start it again on
the same port. Configs and data stay in the service's own folder, which the caller owns.

    port = free_port()
    service = Service("mosquitto", ["mosquitto", "-c", str(folder / "mosquitto.conf")], port, folder)
    service.start()
    ...
    service.stop()
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, process: subprocess.Popen[Any] | None = None) -> None:
    """Return once 127.0.0.1:port accepts; RuntimeError if `process` exits first, else TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Service:
    """A server process that tests can stop, kill and start again on the same port."""

    def __init__(
        self, name: str, command: list[str], port: int, workdir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.command = command
        self.port = port
        self.workdir = workdir
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{name}.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=self.env
            )
        try:
            wait_port(self.port, process=self.process)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{self.name} did not start: {exc}\n{self.log.read_text()[-2000:]}") from None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

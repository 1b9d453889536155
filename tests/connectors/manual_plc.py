"""The test PLC in manual mode (tests/connectors/opcua_server.py with period 0): the test sets
each value with the source and server timestamps it chooses."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from testing.servers import free_port, wait_port

HERE = Path(__file__).resolve().parent

URI = "urn:fabbrica:test"


class ManualServer:
    """The test PLC in manual mode: `write()` sets a value with the timestamps given."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/"
        with open(folder / "opcua-server.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "opcua_server.py"), str(self.port), "0"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        wait_port(self.port, process=self.process)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def write(
        self, station: str, name: str, value: float, source: datetime | None, server: datetime | None
    ) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        command = {
            "station": station,
            "name": name,
            "value": value,
            "source": source.isoformat() if source else None,
            "server": server.isoformat() if server else None,
        }
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def node_id(station: str, name: str) -> str:
    return f"nsu={URI};s=Line1.{station}.{name}"

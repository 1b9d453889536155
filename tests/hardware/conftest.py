"""Real peers for the simulated hardware: a Mosquitto broker, node-opcua, certificates, a served line.

Everything listens on 127.0.0.1 on free ports. A missing broker or npm package skips
the tests that need it on a developer's machine and fails them under CI=true.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from simulations.hardware.pki import CertificatePair, create_certificate

from ..ci import missing

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
NODE_CACHE = ROOT / ".cache" / "node-opcua"

# a small line that produces quickly: parts every few simulated seconds, failures, scrap, two products
FAST_LINE: dict[str, Any] = {
    "name": "pilot",
    "release": "saturated",
    "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}],
    "seed": 5,
    "stations": [
        {
            "name": "cut",
            "cycle_time": {"dist": "lognormal", "mean": 20, "cv": 0.2},
            "setup": 5,
            "failures": {"mtbf": "10min", "mttr": 40},
            "scrap": 0.05,
        },
        {"name": "weld", "cycle_time": {"dist": "gamma", "mean": 18, "cv": 0.3}, "buffer": 2, "scrap": 0.03},
        {
            "name": "pack",
            "cycle_time": {"dist": "uniform", "low": 15, "high": 25},
            "capacity": 2,
            "buffer": 3,
            "failures": {"mtbf": "15min", "mttr": 30},
        },
    ],
}

# a small line that is a network (docs/networks.md): two feeder branches (cut > lathe, and cover,
# which makes the covers C) into an assembly, then wash and test; two products with their own
# routes (B skips the lathe), an AGV (a transport of two places) into the lathe, and a test that
# sends one good part in five back to the wash for rework
NETWORK_LINE: dict[str, Any] = {
    "name": "cell",
    "release": "saturated",
    "seed": 11,
    "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}, {"name": "C"}],
    "routes": {"A": ["cut", "lathe", "assembly", "wash", "test"], "B": ["cut", "assembly", "wash", "test"]},
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 9}, "scrap": 0.02},
        {"name": "lathe", "cycle_time": {"dist": "gamma", "mean": 12, "cv": 0.5}, "buffer": 3,
         "transport": {"time": {"dist": "uniform", "low": 5, "high": 9}, "capacity": 2}},
        {"name": "cover", "release": "saturated", "product": "C",
         "cycle_time": {"dist": "exponential", "mean": 14}, "failures": {"mtbf": "20min", "mttr": 60}},
        {"name": "assembly", "inputs": ["lathe", "cover"], "buffer": 2,
         "cycle_time": {"dist": "lognormal", "mean": 13, "cv": 0.3}},
        {"name": "wash", "cycle_time": {"dist": "exponential", "mean": 8}, "buffer": 2},
        {"name": "test", "cycle_time": {"dist": "exponential", "mean": 10}, "buffer": 2,
         "rework": {"probability": 0.2, "to": "wash"}},
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (a line served with one server per station):
    a free port alone may have its neighbour taken by a server of a test on the other worker."""
    while True:
        first = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")


# -- Mosquitto ----------------------------------------------------------------------------------
class Mosquitto:
    """A Mosquitto broker of our own: its config, data dir and log in a temp folder."""

    def __init__(
        self, binary: str, folder: Path, settings: tuple[str, ...] = ("allow_anonymous true",)
    ) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            *settings,
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder / 'mosquitto.log'}",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # stay root: the temp folder is ours
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            log = (self.folder / "mosquitto.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mosquitto did not start on port {self.port}: {log}") from None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self, pause: float = 0.0) -> None:
        self.stop()
        time.sleep(pause)
        self.start()


def _mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or next(
        (path for path in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.access(path, os.X_OK)), None
    )
    if binary is None:
        missing("the mosquitto broker (Debian package mosquitto)")
    return binary  # type: ignore[return-value]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A Mosquitto broker shared by the session's tests."""
    server = Mosquitto(_mosquitto_binary(), tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for one test only, which it may restart."""
    server = Mosquitto(_mosquitto_binary(), tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@dataclass
class SecureBroker:
    broker: Mosquitto
    ca_file: Path
    user: str
    password: str


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    """A broker that only speaks TLS (certificate from a CA of the test) and wants a password."""
    binary = _mosquitto_binary()
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    folder = tmp_path / "secure-broker"
    folder.mkdir()
    ca_file, cert_file, key_file = _broker_certificates(folder)
    password_file = folder / "passwd"
    subprocess.run([passwd, "-c", "-b", str(password_file), "fab", "s3cret"], check=True, capture_output=True)
    settings = (
        "allow_anonymous false",
        f"password_file {password_file}",
        f"cafile {ca_file}",
        f"certfile {cert_file}",
        f"keyfile {key_file}",
    )
    server = Mosquitto(binary, folder, settings)
    server.start()
    yield SecureBroker(server, ca_file, "fab", "s3cret")
    server.stop()


def _broker_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    import datetime
    import ipaddress

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fabbrica test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return paths


# -- node-opcua ---------------------------------------------------------------------------------
@dataclass
class NodeOpcua:
    node: str
    modules: Path
    script: Path

    def run(self, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Run the probe script with `request` (JSON on stdin) and return its JSON answer."""
        result = subprocess.run(
            [self.node, str(self.script)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "NODE_PATH": str(self.modules)},
            check=False,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(f"node-opcua probe failed ({result.returncode}): {result.stderr[-3000:]}")
        return json.loads(lines[-1])


@pytest.fixture(scope="session")
def node_opcua() -> NodeOpcua:
    """node-opcua's client from the npm registry, installed once into .cache/node-opcua (git-ignored)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("Node.js and npm")
    package = json.loads((NODE_DIR / "package.json").read_text())
    version = package["dependencies"]["node-opcua-client"]
    target = NODE_CACHE / version
    stamp = target / ".installed"
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    # one install at a time: pytest-xdist workers (and other runs) share the cache
    with open(NODE_CACHE / f"{version}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(NODE_DIR / "package.json", target / "package.json")
            lock = NODE_DIR / "package-lock.json"
            if lock.is_file():
                shutil.copy(lock, target / "package-lock.json")
            command = [npm, "ci" if lock.is_file() else "install", "--no-audit", "--no-fund"]
            command.append("--loglevel=error")
            result = subprocess.run(
                command, cwd=target, capture_output=True, text=True, timeout=600, check=False
            )
            if result.returncode != 0:
                missing(f"the npm package node-opcua-client@{version} ({result.stderr.strip()[-500:]})")
            stamp.write_text(version)
    return NodeOpcua(node, target / "node_modules", NODE_DIR / "opcua_probe.js")  # type: ignore[arg-type]


# -- certificates -------------------------------------------------------------------------------
@dataclass
class Pki:
    folder: Path
    trusted: Path
    client: CertificatePair
    untrusted: CertificatePair
    node_client: CertificatePair
    node_client_pem: Path
    client_uri: str = "urn:fabbrica:test-client"
    node_client_uri: str = "urn:fabbrica:node-opcua-probe"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Client certificates made for the session: two trusted (asyncua, node-opcua), one not."""
    folder = tmp_path_factory.mktemp("pki")
    trusted = folder / "trusted"
    trusted.mkdir()
    client = create_certificate(
        folder / "client_cert.der",
        folder / "client_key.pem",
        Pki.client_uri,
        common_name="test client",
        server=False,
    )
    untrusted = create_certificate(
        folder / "stranger_cert.der",
        folder / "stranger_key.pem",
        Pki.client_uri,
        common_name="stranger",
        server=False,
    )
    node_client = create_certificate(
        folder / "node_cert.der",
        folder / "node_key.pem",
        Pki.node_client_uri,
        common_name="node-opcua probe",
        server=False,
    )
    shutil.copy(client.certificate, trusted / "client.der")
    shutil.copy(node_client.certificate, trusted / "node.der")
    node_pem = folder / "node_cert.pem"
    certificate = x509.load_der_x509_certificate(node_client.certificate.read_bytes())
    node_pem.write_bytes(certificate.public_bytes(Encoding.PEM))
    return Pki(folder, trusted, client, untrusted, node_client, node_pem)


# -- a served line, as a separate process --------------------------------------------------------
@dataclass
class ServedProcess:
    process: subprocess.Popen[str]
    endpoint: str
    truth: Path
    out: list[str]

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, dict[str, Any]], Path]:
    def write(name: str, data: dict[str, Any]) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def start_serving(
    args: list[str], *, truth: Path, endpoint: str, ready_timeout: float = 120.0
) -> ServedProcess:
    """`fabbrica line serve ARGS --truth TRUTH` in a child process; returns once it says it serves."""
    command = [sys.executable, "-m", "fabbrica", "line", "serve", *args, "--truth", str(truth)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    out: list[str] = []
    deadline = time.monotonic() + ready_timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            process.stdout.close()
            raise AssertionError(f"fabbrica line serve exited early ({process.wait()}):\n{''.join(out)}")
        out.append(line)
        if line.startswith("serving line"):
            break
    else:
        process.kill()
        process.wait()
        process.stdout.close()
        raise AssertionError(f"fabbrica line serve not ready after {ready_timeout:g}s:\n{''.join(out)}")

    def drain() -> None:
        with process.stdout:  # type: ignore[union-attr]
            for rest in process.stdout:  # type: ignore[union-attr]
                out.append(rest)

    threading.Thread(target=drain, daemon=True).start()
    return ServedProcess(process, endpoint, truth, out)

"""Connector speed against the raw client libraries, on the same broker and server, in one run.

    .venv/bin/python benchmarks/bench_connectors.py [--messages 100000] [--repeats 3]
    .venv/bin/python benchmarks/bench_connectors.py --readings-per-message 10 --drain-only

`--readings-per-message K` publishes K readings per message (a JSON list, as gateways that
buffer a sensor's samples send them), so the drain rates are then in points (readings) per second.

Starts its own Mosquitto and InfluxDB 1.x (Debian packages) on free loopback ports and measures:
1. MQTT drain rate: N JSON sensor messages queued at the broker for an offline persistent session,
   then drained by a bare paho subscriber (QoS 1, auto-ack, counting only) and by
   `fabbrica connect` into InfluxDB 1.x (parse, spool, write). Both clocks start at the same
   event, the first message received, and stop at the last message received (bare) or at the
   sink's answer to the write that stored the last point (connector); rate = N / that time.
   A run that did not get every message is an error (exit status 1), not a rate.
2. OPC UA: the server logs the time of every change it makes, so each client is measured
   against what the server actually produced in the same window (values whose source time
   falls in it): values per second and the share of the produced values, taken in by a bare
   asyncua subscription handler (counting only) and stored by the connector.
3. p99 latency from publish to durable write (the sink's answer), at a steady rate, against the
   flush interval; and the connector's memory (RSS) at that rate and during a database outage.
Prints the median of the repeats for each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[1]
FABBRICA = [sys.executable, "-c", "from fabbrica.cli import main; main()"]


class BenchError(RuntimeError):
    """A measurement that cannot give a rate (for example a client that missed messages)."""


# `fabbrica connect` with two probes, written to the file in $FABBRICA_BENCH_PROBE:
# "first NS" when the MQTT source receives its first message (paho's receive time), and
# "stored NS COUNT" after each answered InfluxDB 1.x write carrying COUNT sensor points.
PROBED_CONNECT = """
import os, sys, time
from connectors.mqtt.source import MqttSourceRunner
from connectors.sinks.influxdb1 import InfluxDB1
out = open(os.environ["FABBRICA_BENCH_PROBE"], "w")
handle, write = MqttSourceRunner._handle, InfluxDB1.write
def first(self, client, batch):
    if batch and not getattr(self, "_probed", False):
        self._probed = True
        out.write(f"first {min(item[4] for item in batch)}\\n")
        out.flush()
    return handle(self, client, batch)
async def timed(self, data, *args, **kwargs):
    rejected = await write(self, data, *args, **kwargs)
    sensors = data.count(b"\\nsensor") + data.startswith(b"sensor")
    if sensors:
        out.write(f"stored {time.time_ns()} {sensors}\\n")
        out.flush()
    return rejected
MqttSourceRunner._handle, InfluxDB1.write = first, timed
sys.argv = ["fabbrica", "-v", "connect", sys.argv[1]]
from fabbrica.cli import main
main()
"""


def start_probed(path: Path, probe: Path) -> subprocess.Popen[str]:
    """`fabbrica connect path` with the probes (see PROBED_CONNECT) writing to `probe`."""
    env = {**os.environ, "FABBRICA_BENCH_PROBE": str(probe)}
    return subprocess.Popen(
        [sys.executable, "-c", PROBED_CONNECT, str(path)],
        cwd=path.parent, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def read_probe(probe: Path) -> tuple[int, int, int]:
    """(first message received, last write answered, sensor points written) from a probe file."""
    first, last, stored = 0, 0, 0
    for line in probe.read_text().splitlines():
        kind, *values = line.split()
        if kind == "first":
            first = int(values[0])
        elif kind == "stored":
            last, stored = int(values[0]), stored + int(values[1])
    if not first:
        raise BenchError(f"{probe}: the connector received no message")
    return first, last, stored


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


class Servers:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mqtt_port, self.influx_port, rpc = free_port(), free_port(), free_port()
        (folder / "mosquitto.conf").write_text(
            ("user root\n" if os.geteuid() == 0 else "")
            + f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
        )
        (folder / "influxdb.conf").write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
            f'[meta]\n  dir = "{folder}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{folder}/data"\n  wal-dir = "{folder}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.influx_port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n"
        )
        self.mosquitto = subprocess.Popen(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(folder / "mosquitto.conf")]
        )
        self.start_influx()
        wait_port(self.mqtt_port)

    def start_influx(self) -> None:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        command = [binary, "run", "-config", str(self.folder / "influxdb.conf")]
        self.influxd = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.influx_port)
        time.sleep(0.5)

    def stop_influx(self) -> None:
        self.influxd.terminate()
        self.influxd.wait()

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"

    def close(self) -> None:
        for process in (self.mosquitto, self.influxd):
            process.terminate()
            process.wait()


def influx_count(url: str, database: str, measurement: str = "sensor", field: str = "value") -> int:
    params = urllib.parse.urlencode({"db": database, "q": f'SELECT count("{field}") FROM "{measurement}"'})
    try:
        with urllib.request.urlopen(f"{url}/query?{params}", timeout=10) as answer:
            payload = json.load(answer)
    except OSError:
        return 0
    series = payload["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def session(client_id: str, port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    return client


def register(client_id: str, port: int, topic: str) -> None:
    """Create an offline persistent session subscribed to `topic` (QoS 1)."""
    client = session(client_id, port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def publish(
    port: int,
    count: int,
    start: int = 0,
    rate: float | None = None,
    stamp_now: bool = False,
    readings: int = 1,
) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}-{start}")
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    base = time.time() - 3600
    began = time.monotonic()
    info = None
    outstanding: deque[Any] = deque()
    for index in range(start, start + count):
        ts = time.time() if stamp_now else base + index / 10_000
        if readings == 1:
            payload = json.dumps({"ts": ts, "value": float(index), "unit": "kWh"})
        else:  # K samples of the sensor, 10 us apart (distinct timestamps, so K points)
            payload = json.dumps(
                [{"ts": ts + k / 100_000, "value": float(index), "unit": "kWh"} for k in range(readings)]
            )
        info = client.publish(f"factory/L1/S{index % 10}/energy", payload, qos=1)
        outstanding.append(info)
        if len(outstanding) > 20_000:  # message ids wrap at 65535
            outstanding.popleft().wait_for_publish(120)
        if rate:
            ahead = (index - start + 1) / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
    if info is not None:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def bare_paho_drain(port: int, count: int, repeat: int, readings: int = 1) -> float:
    """Messages per second a bare paho subscriber receives (counting only), from the first
    message received to the last; BenchError if it did not receive all `count`."""
    client_id = f"bench-bare{repeat}"
    register(client_id, port, "factory/+/+/+")
    publish(port, count, readings=readings)
    received = 0
    done = threading.Event()
    first: list[int] = []
    last: list[int] = []

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        nonlocal received
        if not first:
            first.append(time.time_ns())
        received += 1
        if received == count:
            last.append(time.time_ns())
            done.set()

    client = session(client_id, port)
    client.on_message = on_message
    client.loop_start()
    timeout = max(120.0, count / 500)
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    if not last:
        raise BenchError(
            f"bare paho subscriber received {received} of {count} messages within {timeout:.0f} s"
        )
    return count / ((last[0] - first[0]) / 1e9)


def connector_config(
    folder: Path,
    servers: Servers,
    database: str,
    *,
    member: str = "",
    topic_filter: str = "factory/+/+/+",
    **sink: Any,
) -> Path:
    """A connector config for one MQTT subscription into InfluxDB 1.x; client id bench-DATABASE[MEMBER]."""
    config = {
        "name": f"bench{member}",
        "sink": {"type": "influxdb1", "url": servers.influx_url, "database": database, **sink},
        "spool": {"path": str(folder / f"spool-{database}{member}"), "max_bytes": "2GB"},
        "health": {"interval": "5s"},
        "mqtt": [
            {
                "url": f"mqtt://127.0.0.1:{servers.mqtt_port}",
                "client_id": f"bench-{database}{member}",
                "topics": [{"filter": topic_filter, "format": "json"}],
            }
        ],
    }
    path = folder / f"{database}{member}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_connected(process: subprocess.Popen[str], marker: str = "connected as") -> float:
    """Wait for the connector's log line with `marker` (MQTT: "connected as", OPC UA:
    "connected, N variables", once subscribed); keep draining its stderr afterwards."""
    connected = threading.Event()
    started: list[float] = []

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if marker in line and not started:
                started.append(time.perf_counter())
                connected.set()

    threading.Thread(target=watch, daemon=True).start()
    if not connected.wait(120):
        raise TimeoutError("the connector did not connect")
    return started[0]


def create_database(servers: Servers, database: str) -> None:
    urllib.request.urlopen(
        urllib.request.Request(f"{servers.influx_url}/query", data=f"q=CREATE DATABASE {database}".encode()),
        timeout=10,
    ).close()


def drain(servers: Servers, database: str, paths: list[Path], points: int) -> tuple[float, list[int]]:
    """Start one probed connector per config at once, wait until `points` sensor points are in
    `database`; points per second from the first message any of them received to the last
    write answered, and the points each one wrote. BenchError if they do not all arrive."""
    probes = [path.with_suffix(".probe") for path in paths]
    processes = [start_probed(path, probe) for path, probe in zip(paths, probes, strict=True)]
    try:
        for process in processes:
            wait_connected(process)
        deadline = time.monotonic() + max(120.0, points / 1000)
        while (stored := influx_count(servers.influx_url, database)) < points:
            if time.monotonic() > deadline:
                raise BenchError(f"{database}: {stored} of {points} points stored within the time allowed")
            time.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
    figures = [read_probe(probe) for probe in probes]
    first = min(first for first, _, _ in figures)
    last = max(last for _, last, _ in figures)
    return points / ((last - first) / 1e9), [stored for _, _, stored in figures]


def connector_drain(folder: Path, servers: Servers, count: int, repeat: int, readings: int = 1) -> float:
    """Points per second the connector takes from the broker into InfluxDB 1.x (see `drain`)."""
    database = f"drain{repeat}"
    path = connector_config(folder, servers, database, batch_size=10000, flush_interval="0.5s")
    register(f"bench-{database}", servers.mqtt_port, "factory/+/+/+")
    create_database(servers, database)
    publish(servers.mqtt_port, count, readings=readings)
    rate, _ = drain(servers, database, [path], count * readings)
    return rate


def latency_and_memory(
    folder: Path, servers: Servers, rate: float, seconds: float, flush: float
) -> dict[str, float]:
    """p99 publish -> durable write from the connector's own sink timing, and RSS."""
    database = "latency"
    path = connector_config(folder, servers, database, batch_size=100000, flush_interval=f"{flush}s")
    probe = folder / "latency.txt"
    env = {**os.environ, "FABBRICA_BENCH_LATENCY": str(probe)}
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from connectors.sinks.influxdb1 import InfluxDB1
        write = InfluxDB1.write
        out = open(os.environ["FABBRICA_BENCH_LATENCY"], "w")
        async def timed(self, data, count):
            rejected = await write(self, data, count)
            now = time.time_ns()
            for line in data.split(b"\\n"):
                if line.startswith(b"sensor"):
                    out.write(str((now - int(line.rsplit(b" ", 1)[1])) / 1e9) + "\\n")
            out.flush()
            return rejected
        InfluxDB1.write = timed
        sys.argv = ["fabbrica", "connect", {str(path)!r}]
        from fabbrica.cli import main
        main()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script.replace('"connect"', '"-v", "connect"')],
        cwd=folder, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_connected(process)
    time.sleep(1)
    watcher = psutil.Process(process.pid)
    rss: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss.append(watcher.memory_info().rss / 2**20)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    publish(servers.mqtt_port, int(rate * seconds), rate=rate, stamp_now=True)
    steady = max(rss)
    rss.clear()
    servers.stop_influx()  # an outage: the spool grows on disk, memory should not
    publish(servers.mqtt_port, int(rate * seconds), start=10**7, rate=rate, stamp_now=True)
    outage = max(rss)
    servers.start_influx()
    stop.set()
    sampler.join()
    process.terminate()
    process.wait(60)
    latencies = [float(line) for line in probe.read_text().split()][: int(rate * seconds)]
    steady_latencies = sorted(latencies)
    return {
        "p50_latency_s": steady_latencies[len(steady_latencies) // 2],
        "p99_latency_s": steady_latencies[int(0.99 * (len(steady_latencies) - 1))],
        "flush_interval_s": flush,
        "rss_mb_at_rate": steady,
        "rss_mb_during_outage": outage,
    }


# The OPC UA server: `count` variables all changed every `period` seconds, one source time per
# step; each step's source time (epoch ns, microsecond precision as OPC UA keeps it) is appended
# to the file `steps`, so what the server produced in a window is known, not assumed.
OPCUA_SERVER = """
import asyncio, sys
from datetime import UTC, datetime
from asyncua import Server, ua
async def main(port, count, period, steps):
    log = open(steps, "a", buffering=1)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    ns = await server.register_namespace("urn:fabbrica:bench")
    line = await server.nodes.objects.add_object(ua.NodeId("L", ns), ua.QualifiedName("L", ns))
    nodes = []
    for s in range(count // 10):
        station = await line.add_object(ua.NodeId(f"L.S{s}", ns), ua.QualifiedName(f"S{s}", ns))
        for v in range(10):
            node_id, name = ua.NodeId(f"L.S{s}.V{v}", ns), ua.QualifiedName(f"V{v}", ns)
            nodes.append(await station.add_variable(node_id, name, 0.0))
    async with server:
        step = 0
        while True:
            step += 1
            now = datetime.now(UTC)
            value = ua.Variant(float(step), ua.VariantType.Double)
            for node in nodes:
                data = ua.DataValue(value, SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(node.nodeid, data)
            log.write(f"{int(now.timestamp()) * 10**9 + now.microsecond * 1000}\\n")
            await asyncio.sleep(period)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
"""


def produced(steps: Path, variables: int, start_ns: int, end_ns: int) -> int:
    """Value changes the OPC UA server made with a source time in [start_ns, end_ns)."""
    times = [int(line) for line in steps.read_text().split()]
    return variables * sum(1 for stamp in times if start_ns <= stamp < end_ns)


def _epoch_ns(stamp: Any) -> int:
    """An OPC UA source time (a datetime, naive meaning UTC) as epoch ns."""
    seconds = stamp.replace(tzinfo=None) - datetime.datetime(1970, 1, 1)
    return (seconds.days * 86400 + seconds.seconds) * 10**9 + seconds.microseconds * 1000


async def bare_opcua(url: str, seconds: float) -> tuple[int, int, int]:
    """(values received, window start ns, window end ns): notifications whose source time is in
    the window, counted by a bare asyncua subscription handler."""
    from asyncua import Client

    counted = 0
    window = [0, 0]

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            nonlocal counted
            if window[0] <= _epoch_ns(data.monitored_item.Value.SourceTimestamp) < window[1]:
                counted += 1

    async with Client(url) as client:
        objects = client.nodes.objects
        line = (await objects.get_children())[-1]
        nodes = [var for station in await line.get_children() for var in await station.get_children()]
        subscription = await client.create_subscription(50, Handler())
        await subscription.subscribe_data_change(nodes, queuesize=1000, sampling_interval=0)
        await asyncio.sleep(2)
        window[:] = [time.time_ns(), time.time_ns() + int(seconds * 1e9)]
        await asyncio.sleep(seconds + 3)  # the window, then time for its last values to arrive
    return counted, window[0], window[1]


def connector_opcua(
    folder: Path, servers: Servers, url: str, seconds: float, repeat: int
) -> tuple[int, int, int]:
    """(values stored with a source time in the window, window start ns, window end ns)."""
    database = f"opcua{repeat}"
    config = {
        "name": "bench-opcua",
        "sink": {"type": "influxdb1", "url": servers.influx_url, "database": database, "batch_size": 20000},
        "spool": {"path": str(folder / f"spool-{database}")},
        "opcua": [
            {
                "endpoint": url,
                "nodes": ["Objects/L/*/*"],
                "sampling_interval": 0,
                "publishing_interval": "50ms",
            }
        ],
    }
    path = folder / f"{database}.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [*FABBRICA, "-v", "connect", str(path)], cwd=folder, stderr=subprocess.PIPE, text=True
    )
    wait_connected(process, "variables")  # subscribed: start-up and browsing left out
    time.sleep(2)  # as the bare client, which waits 2 s after subscribing
    start_ns = time.time_ns()
    time.sleep(seconds)
    end_ns = time.time_ns()
    time.sleep(3)
    process.terminate()
    process.wait(60)
    params = urllib.parse.urlencode(
        {"db": database, "q": f"SELECT count(*) FROM machine WHERE time >= {start_ns} AND time < {end_ns}"}
    )
    with urllib.request.urlopen(f"{servers.influx_url}/query?{params}", timeout=30) as answer:
        series = json.load(answer)["results"][0].get("series", [])
    stored = sum(value for value in series[0]["values"][0][1:] if value) if series else 0
    return stored, start_ns, end_ns


def opcua_runs(
    folder: Path, servers: Servers, args: argparse.Namespace, results: dict[str, list[float]]
) -> None:
    """Bare asyncua handler and connector in turn against one server, each measured against the
    value changes the server made in its own window."""
    port, steps = free_port(), folder / "opcua-steps.txt"
    command = [sys.executable, "-c", OPCUA_SERVER, str(port), str(args.opcua_variables), "0.05", str(steps)]
    server = subprocess.Popen(command)
    try:
        wait_port(port)
        time.sleep(2)
        url = f"opc.tcp://127.0.0.1:{port}/"
        for repeat in range(args.repeats):
            for who in ("bare_asyncua", "connector_opcua"):
                if who == "bare_asyncua":
                    got, start_ns, end_ns = asyncio.run(bare_opcua(url, args.seconds))
                else:
                    got, start_ns, end_ns = connector_opcua(folder, servers, url, args.seconds, repeat)
                made = produced(steps, args.opcua_variables, start_ns, end_ns)
                if not made:
                    raise BenchError(f"the OPC UA server produced no value in the {who} window")
                results.setdefault(f"opcua_server_values_per_s_{who}_window", []).append(made / args.seconds)
                results.setdefault(f"{who}_values_per_s", []).append(got / args.seconds)
                results.setdefault(f"{who}_share_of_produced", []).append(got / made)
            print({key: round(values[-1], 3) for key, values in results.items()}, flush=True)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--opcua-variables", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=8.0, help="OPC UA measuring window")
    parser.add_argument("--latency-rate", type=float, default=2000.0, help="messages/s for the latency run")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--drain-only", action="store_true", help="only the MQTT drain rates")
    only.add_argument("--opcua-only", action="store_true", help="only the OPC UA rates")
    only.add_argument("--latency-only", action="store_true", help="only latency and memory")
    parser.add_argument(
        "--readings-per-message", type=int, default=1, help="readings per MQTT message (a JSON list)"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-connectors-"))
    servers = Servers(folder)
    results: dict[str, list[float]] = {}
    medians: dict[str, float] = {}
    k = args.readings_per_message
    try:
        if not (args.latency_only or args.opcua_only):
            for repeat in range(args.repeats):
                results.setdefault("bare_paho_readings_per_s", []).append(
                    bare_paho_drain(servers.mqtt_port, args.messages, repeat, k) * k
                )
                results.setdefault("connector_influxdb1_points_per_s", []).append(
                    connector_drain(folder, servers, args.messages, repeat, k)
                )
                print({key: round(values[-1]) for key, values in results.items()}, flush=True)
        if not (args.latency_only or args.drain_only):
            opcua_runs(folder, servers, args, results)
        medians = {key: statistics.median(values) for key, values in results.items()}
        if not (args.drain_only or args.opcua_only):
            medians["latency_rate_msgs_per_s"] = args.latency_rate
            medians.update(latency_and_memory(folder, servers, rate=args.latency_rate, seconds=10, flush=1.0))
    finally:
        servers.close()
        shutil.rmtree(folder, ignore_errors=True)
    if "bare_paho_readings_per_s" in medians:
        medians["readings_per_message"] = k
        medians["mqtt_ratio"] = (
            medians["connector_influxdb1_points_per_s"] / medians["bare_paho_readings_per_s"]
        )
    if "bare_asyncua_share_of_produced" in medians:
        shares = medians["connector_opcua_share_of_produced"] / medians["bare_asyncua_share_of_produced"]
        medians["opcua_ratio"] = shares
    print(f"medians of {args.repeats} repeats")
    for key, value in medians.items():
        print(f"{key:44s} {value:12.3f}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"bench_connectors: error: {exc}")

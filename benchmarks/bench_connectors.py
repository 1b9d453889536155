"""Connector speed against the raw client libraries, on the same broker and server, in one run.

    .venv/bin/python benchmarks/bench_connectors.py [--messages 100000] [--repeats 3]
    .venv/bin/python benchmarks/bench_connectors.py --readings-per-message 10 --drain-only

`--readings-per-message K` publishes K readings per message (a JSON list, as gateways that
buffer a sensor's samples send them), so the drain rates are then in points (readings) per second.

Starts its own Mosquitto and InfluxDB 1.x (Debian packages) on free loopback ports and measures:
1. MQTT drain rate: N JSON sensor messages queued at the broker for an offline persistent session,
   then drained by a bare paho subscriber (QoS 1, auto-ack, counting only) and by
   `fabbrica connect` into InfluxDB 1.x (parse, spool, write); rate = N / drain time.
2. OPC UA: values per second taken in by a bare asyncua subscription handler (counting only) and
   written by the connector, from the same server producing a fixed change rate.
3. p99 latency from publish to durable write (the sink's answer), at a steady rate, against the
   flush interval; and the connector's memory (RSS) at that rate and during a database outage.
Prints the median of the repeats for each figure.
"""

from __future__ import annotations

import argparse
import asyncio
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


def bare_paho_drain(port: int, count: int, readings: int = 1) -> float:
    """Messages per second a bare paho subscriber receives (counting only)."""
    register("bench-bare", port, "factory/+/+/+")
    publish(port, count, readings=readings)
    received = 0
    done = threading.Event()
    first: list[float] = []

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received >= count:
            done.set()

    started = time.perf_counter()
    client = session("bench-bare", port)
    client.on_message = on_message
    client.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def connector_config(folder: Path, servers: Servers, database: str, **sink: Any) -> Path:
    config = {
        "name": "bench",
        "sink": {"type": "influxdb1", "url": servers.influx_url, "database": database, **sink},
        "spool": {"path": str(folder / f"spool-{database}"), "max_bytes": "2GB"},
        "health": {"interval": "5s"},
        "mqtt": [
            {
                "url": f"mqtt://127.0.0.1:{servers.mqtt_port}",
                "client_id": f"bench-{database}",
                "topics": [{"filter": "factory/+/+/+", "format": "json"}],
            }
        ],
    }
    path = folder / f"{database}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_connected(process: subprocess.Popen[str]) -> float:
    """Wait for the connector's "connected as" log line; keep draining its stderr afterwards."""
    connected = threading.Event()
    started: list[float] = []

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if "connected as" in line and not started:
                started.append(time.perf_counter())
                connected.set()

    threading.Thread(target=watch, daemon=True).start()
    if not connected.wait(120):
        raise TimeoutError("the connector did not connect")
    return started[0]


def connector_drain(folder: Path, servers: Servers, count: int, repeat: int, readings: int = 1) -> float:
    """Points per second the connector takes from the broker into InfluxDB 1.x."""
    database = f"drain{repeat}"
    path = connector_config(folder, servers, database, batch_size=10000, flush_interval="0.5s")
    register(f"bench-{database}", servers.mqtt_port, "factory/+/+/+")
    urllib.request.urlopen(
        urllib.request.Request(f"{servers.influx_url}/query", data=f"q=CREATE DATABASE {database}".encode()),
        timeout=10,
    ).close()
    publish(servers.mqtt_port, count, readings=readings)
    process = subprocess.Popen(
        [*FABBRICA, "-v", "connect", str(path)], cwd=folder, stderr=subprocess.PIPE, text=True
    )
    started = [wait_connected(process)]  # the drain starts: process start-up left out
    while influx_count(servers.influx_url, database) < count * readings:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started[0]
    process.terminate()
    process.wait(60)
    return count * readings / elapsed


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


OPCUA_SERVER = """
import asyncio, sys
from datetime import UTC, datetime
from asyncua import Server, ua
async def main(port, count, period):
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
            await asyncio.sleep(period)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
"""


async def bare_opcua(url: str, seconds: float) -> float:
    from asyncua import Client, ua

    counted = 0
    window: list[float] = []

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            nonlocal counted
            if window:
                counted += 1

    async with Client(url) as client:
        objects = client.nodes.objects
        line = (await objects.get_children())[-1]
        nodes = [var for station in await line.get_children() for var in await station.get_children()]
        subscription = await client.create_subscription(50, Handler())
        await subscription.subscribe_data_change(nodes, queuesize=1000, sampling_interval=0)
        await asyncio.sleep(2)
        window.append(time.time())
        await asyncio.sleep(seconds)
        result = counted / seconds
        window.clear()
        del ua
    return result


def connector_opcua(folder: Path, servers: Servers, url: str, seconds: float, repeat: int) -> float:
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
    process = subprocess.Popen([*FABBRICA, "connect", str(path)], cwd=folder)
    time.sleep(5)
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
    if not series:
        return 0.0
    return sum(value for value in series[0]["values"][0][1:] if value) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--opcua-variables", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--latency-rate", type=float, default=2000.0, help="messages/s for the latency run")
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--drain-only", action="store_true", help="only the MQTT drain rates")
    parser.add_argument(
        "--readings-per-message", type=int, default=1, help="readings per MQTT message (a JSON list)"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-connectors-"))
    servers = Servers(folder)
    results: dict[str, list[float]] = {}
    try:
        for repeat in range(0 if args.latency_only else args.repeats):
            k = args.readings_per_message
            results.setdefault("bare_paho_msgs_per_s", []).append(
                bare_paho_drain(servers.mqtt_port, args.messages, k)
            )
            results.setdefault("connector_influxdb1_points_per_s", []).append(
                connector_drain(folder, servers, args.messages, repeat, k)
            )
            print({key: round(values[-1]) for key, values in results.items()}, flush=True)
        if args.drain_only:
            bare = statistics.median(results["bare_paho_msgs_per_s"]) * args.readings_per_message
            points = statistics.median(results["connector_influxdb1_points_per_s"])
            print(f"{'readings_per_message':36s} {args.readings_per_message:12d}")
            print(f"{'bare_paho_readings_per_s':36s} {bare:12.1f}")
            print(f"{'connector_influxdb1_points_per_s':36s} {points:12.1f}")
            print(f"{'mqtt_ratio':36s} {points / bare:12.3f}")
            return
        if args.latency_only:
            latency = latency_and_memory(folder, servers, rate=args.latency_rate, seconds=10, flush=1.0)
            for key, value in latency.items():
                print(f"{key:36s} {value:12.3f}")
            return
        opcua_port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", OPCUA_SERVER, str(opcua_port), str(args.opcua_variables), "0.05"]
        )
        wait_port(opcua_port)
        time.sleep(2)
        url = f"opc.tcp://127.0.0.1:{opcua_port}/"
        for repeat in range(args.repeats):
            results.setdefault("bare_asyncua_values_per_s", []).append(
                asyncio.run(bare_opcua(url, args.seconds))
            )
            results.setdefault("connector_opcua_values_per_s", []).append(
                connector_opcua(folder, servers, url, args.seconds, repeat)
            )
            print({key: round(values[-1]) for key, values in results.items()}, flush=True)
        server.terminate()
        server.wait()
        latency = latency_and_memory(folder, servers, rate=args.latency_rate, seconds=10, flush=1.0)
    finally:
        servers.close()
        shutil.rmtree(folder, ignore_errors=True)
    medians = {key: statistics.median(values) for key, values in results.items()}
    medians["mqtt_ratio"] = medians["connector_influxdb1_points_per_s"] / medians["bare_paho_msgs_per_s"]
    medians["opcua_ratio"] = medians["connector_opcua_values_per_s"] / medians["bare_asyncua_values_per_s"]
    medians["latency_rate_msgs_per_s"] = args.latency_rate
    medians.update(latency)
    for key, value in medians.items():
        print(f"{key:36s} {value:12.3f}")


if __name__ == "__main__":
    main()

"""Soak: the connector under a steady plant-sized load for half an hour, into InfluxDB 1.x.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--stations 50] [--signals 10] [--rate-hz 10]
        [--mqtt-share 0.5] [--sample-every 10s] [--out DIR] [--profile]

Not part of the test suite. It starts, on free loopback ports with temporary config and data:
Mosquitto, InfluxDB 1.x (`influxd`, Debian's package), two load generators (child processes of
this script) and the real connector, `fabbrica connect CONFIG`, with both sources into the
influxdb1 sink:

- an OPC UA server (asyncua) for the OPC UA share of the stations, `Objects/soak/<station>/sigNN`,
  every variable written RATE times a second with a source timestamp on the schedule;
- a paho publisher for the MQTT share, `factory/soak/<station>/sigNN`, JSON `{"ts", "value",
  "unit"}` at QoS 1, also on the schedule.

The k-th value of every signal is the number k, stamped `go + k / RATE`, so what is stored can be
counted and checked against what was generated. Every `--sample-every` it records the connector's
memory (RSS) and CPU, its lag (`lag_s` of its own `connector_health` points, read back from
InfluxDB) and the end-to-end lag (now minus the newest stored timestamp, per protocol), its
counters (points in, written, spooled, dropped, rejected, reconnects), ERROR and WARNING lines
in its log, the values generated and those stored in InfluxDB. After `--minutes` the generators
stop, the connector drains, everything stored is counted, and OUT/ receives samples.csv,
summary.json (memory slope over the second half by linear fit, max and p99 lag, errors, generated
against stored, a verdict per goal), soak.png and soak.svg, the connector's config and log.

Goals (the issue's): flat memory (slope under --flat-mb-per-hour), lag under 2 s, no errors
(no ERROR line, nothing dropped or rejected, every generated value stored). The exit code is 0
whatever the verdict; it is 1 only when the harness itself fails. With --profile the connector
runs under cProfile (slower) and OUT/connector.prof and connector-profile.txt show where its
time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from foundation.durations import parse_duration  # noqa: E402
from testing.servers import Service, free_port  # noqa: E402

DATABASE = "soak"
LINE = "soak"
CONNECTOR = "soak"
OPCUA_URI = "urn:fabbrica:soak"


# -- the load generators (child processes of this script) --------------------------------------------
def station_names(first: int, count: int) -> list[str]:
    return [f"s{index:03d}" for index in range(first, first + count)]


def _status(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _read_go() -> tuple[float, float]:
    """Block until the harness writes `go START DURATION` on stdin."""
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "go":
            return float(words[1]), float(words[2])
    raise SystemExit(0)  # the harness went away


async def opcua_generator(port: int, first: int, stations: int, signals: int, rate: float) -> None:
    import logging

    from asyncua import Server, ua

    from simulations.hardware.plc import PublishedValue

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_server_name("fabbrica soak PLC")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace(OPCUA_URI)
    line = await server.nodes.objects.add_object(ua.NodeId(LINE, ns), ua.QualifiedName(LINE, ns))
    nodes: list[ua.NodeId] = []
    for station in station_names(first, stations):
        obj = await line.add_object(ua.NodeId(f"{LINE}.{station}", ns), ua.QualifiedName(station, ns))
        for index in range(signals):
            name = f"sig{index:02d}"
            node = await obj.add_variable(
                ua.NodeId(f"{LINE}.{station}.{name}", ns),
                ua.QualifiedName(name, ns),
                ua.Variant(-1.0, ua.VariantType.Double),
            )
            nodes.append(node.nodeid)
    good = ua.StatusCode(ua.StatusCodes.Good)
    double = ua.VariantType.Double
    subscriptions = server.iserver.subscription_service.subscriptions
    async with server:
        go_future = asyncio.get_running_loop().run_in_executor(None, _read_go)
        while not go_future.done():  # until go: tell the harness how many items are monitored
            monitored = sum(len(sub.monitored_item_srv._monitored_items) for sub in subscriptions.values())
            _status(ready=True, variables=len(nodes), monitored=monitored)
            await asyncio.wait({go_future}, timeout=0.5)
        start, duration = go_future.result()
        ticks = round(duration * rate)
        generated, worst = 0, 0.0
        write = server.write_attribute_value
        for k in range(ticks):
            due = start + k / rate
            ahead = due - time.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
            now = datetime.now(UTC)
            stamp = datetime.fromtimestamp(due, UTC)
            value = float(k)
            for nodeid in nodes:
                await write(
                    nodeid,
                    PublishedValue(
                        ua.Variant(value, double), StatusCode=good, SourceTimestamp=stamp, ServerTimestamp=now
                    ),
                )
            generated += len(nodes)
            late = time.time() - due
            worst = max(worst, late)
            _status(generated=generated, lag_s=round(late, 3), worst_lag_s=round(worst, 3))
        _status(final=True, generated=generated, acked=generated, worst_lag_s=round(worst, 3))
        # keep serving until the harness has stopped the connector and closes our stdin
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def mqtt_generator(port: int, first: int, stations: int, signals: int, rate: float) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"soak-generator-{os.getpid()}")
    client.max_queued_messages_set(0)
    # No in-flight window: with one, paho walks the whole window on every PUBACK as soon as
    # messages queue behind it, and a generator that fell behind once never catches up.
    client.max_inflight_messages_set(0)
    acked = [0]

    def on_publish(*args: Any) -> None:
        acked[0] += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    topics = [
        f"factory/{LINE}/{station}/sig{index:02d}"
        for station in station_names(first, stations)
        for index in range(signals)
    ]
    _status(ready=True, variables=len(topics), monitored=len(topics))
    start, duration = _read_go()
    ticks = round(duration * rate)
    generated, worst = 0, 0.0
    for k in range(ticks):
        due = start + k / rate
        ahead = due - time.time()
        if ahead > 0:
            time.sleep(ahead)
        payload = f'{{"ts": {due:.6f}, "value": {float(k)}, "unit": "u"}}'
        for topic in topics:
            client.publish(topic, payload, qos=1)
        generated += len(topics)
        late = time.time() - due
        worst = max(worst, late)
        _status(generated=generated, acked=acked[0], lag_s=round(late, 3), worst_lag_s=round(worst, 3))
    deadline = time.monotonic() + 120
    while acked[0] < generated and time.monotonic() < deadline:
        time.sleep(0.1)
    _status(final=True, generated=generated, acked=acked[0], worst_lag_s=round(worst, 3))
    client.loop_stop()
    client.disconnect()


# -- servers -------------------------------------------------------------------------------------------
def start_mosquitto(folder: Path) -> Service:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mosquitto.conf").write_text(
        ("user root\n" if os.geteuid() == 0 else "") + f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "log_dest stdout\nlog_type error\nlog_type warning\n"
    )
    service = Service("mosquitto", [binary, "-c", str(folder / "mosquitto.conf")], port, folder)
    service.start()
    return service


def start_influxd(folder: Path) -> Service:
    binary = shutil.which("influxd") or "/usr/bin/influxd"
    port, rpc = free_port(), free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "influxdb.conf").write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{folder}/meta"\n  logging-enabled = false\n'
        f'[data]\n  dir = "{folder}/data"\n  wal-dir = "{folder}/wal"\n  query-log-enabled = false\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n"
    )
    service = Service("influxd", [binary, "run", "-config", str(folder / "influxdb.conf")], port, folder)
    service.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1):
                return service
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Influx:
    """InfluxQL queries against the soak database; every answer's series as a list."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.seconds = 0.0  # time spent querying, to tell the load the harness itself adds

    def query(self, text: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"db": DATABASE, "q": text, "epoch": "ns"})
        began = time.monotonic()
        try:
            with urllib.request.urlopen(f"{self.url}/query?{params}", timeout=60) as answer:
                payload = json.load(answer)
        finally:
            self.seconds += time.monotonic() - began
        series: list[dict[str, Any]] = []
        for result in payload.get("results", []):
            if "error" in result and "database not found" not in result["error"]:
                raise RuntimeError(f"InfluxQL {text!r}: {result['error']}")
            series.extend(result.get("series", []))
        return series

    def count(self, since_ns: int, until_ns: int | None = None) -> dict[str, int]:
        """Values stored per protocol with timestamps in [since, until)."""
        where = f"time >= {since_ns}" + (f" AND time < {until_ns}" if until_ns is not None else "")
        counts = {"opcua": 0, "mqtt": 0}
        for item in self.query(f'SELECT count(*) FROM "machine" WHERE {where}'):
            counts["opcua"] += sum(int(value or 0) for value in item["values"][0][1:])
        for item in self.query(f'SELECT count("value") FROM "sensor" WHERE {where}'):
            counts["mqtt"] += int(item["values"][0][1] or 0)
        return counts

    def newest(self) -> dict[str, int | None]:
        """The newest stored timestamp per protocol (ns), None when nothing is stored yet."""
        newest: dict[str, int | None] = {}
        for protocol, text in (
            ("opcua", 'SELECT last("sig00") FROM "machine"'),
            ("mqtt", 'SELECT last("value") FROM "sensor"'),
        ):
            series = self.query(text)
            newest[protocol] = int(series[0]["values"][0][0]) if series else None
        return newest

    def health(self) -> dict[str, Any]:
        series = self.query(
            f'SELECT * FROM "connector_health" WHERE "connector" = \'{CONNECTOR}\' ORDER BY time DESC LIMIT 1'
        )
        if not series:
            return {}
        return dict(zip(series[0]["columns"], series[0]["values"][0], strict=True))

    def gaps(self, since_ns: int, expected_per_series: int) -> list[str]:
        """Series whose stored count differs from the number of values generated per signal."""
        odd = []
        for measurement, field in (("machine", "*"), ("sensor", '"value"')):
            series = self.query(
                f'SELECT count({field}) FROM "{measurement}" WHERE time >= {since_ns} GROUP BY "station"'
                + (', "sensor"' if measurement == "sensor" else "")
            )
            for item in series:
                tags = item.get("tags") or {}
                for column, value in zip(item["columns"][1:], item["values"][0][1:], strict=True):
                    if value is not None and int(value) != expected_per_series:
                        name = tags.get("sensor") or column.removeprefix("count_")
                        odd.append(f"{tags.get('station')}/{name}: {value}")
        return odd


class StoredCounter:
    """Counts what is stored without re-reading the whole run every sample: values older than
    `margin` seconds are counted once and kept; only the recent part is counted again."""

    def __init__(self, influx: Influx, since_ns: int, margin_s: float = 60.0) -> None:
        self.influx = influx
        self.edge = since_ns
        self.margin_ns = int(margin_s * 1e9)
        self.settled = {"opcua": 0, "mqtt": 0}

    def count(self, now_ns: int) -> dict[str, int]:
        edge = now_ns - self.margin_ns
        if edge > self.edge:
            for protocol, value in self.influx.count(self.edge, edge).items():
                self.settled[protocol] += value
            self.edge = edge
        recent = self.influx.count(self.edge)
        return {protocol: self.settled[protocol] + recent[protocol] for protocol in recent}


# -- the processes' own figures ---------------------------------------------------------------------------
class Generator:
    """A generator child process, its status lines read by a thread."""

    def __init__(self, role: str, port: int, first: int, stations: int, args: argparse.Namespace) -> None:
        command = [
            sys.executable,
            __file__,
            "--role",
            role,
            "--port",
            str(port),
            "--first",
            str(first),
            "--stations",
            str(stations),
            "--signals",
            str(args.signals),
            "--rate-hz",
            str(args.rate_hz),
        ]
        self.role = role
        self.stations = stations
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        self.status: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                status = json.loads(line)
                self.status = status
                if status.get("final"):
                    self.final = status

    def go(self, start: float, duration: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"go {start} {duration}\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()  # the OPC UA generator stops serving
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def rss_mb(process: Any) -> float:
    try:
        return float(process.memory_info().rss) / 2**20
    except Exception:
        return math.nan


def log_levels(path: Path, offset: int) -> tuple[int, int, int, list[str]]:
    """ERROR (and Traceback) and WARNING lines written to the log since `offset`; new offset."""
    errors = warnings = 0
    examples: list[str] = []
    with open(path, "rb") as log:
        log.seek(offset)
        data = log.read()
    complete = data.rfind(b"\n") + 1
    for line in data[:complete].decode(errors="replace").splitlines():
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
            errors += 1
            examples.append(line[:300])
        elif " WARNING " in line:
            warnings += 1
            examples.append(line[:300])
    return errors, warnings, offset + complete, examples


# -- the run ------------------------------------------------------------------------------------------------
def duration_argument(text: str) -> float:
    """A duration option (`10s`, `500ms`, `1min`), parsed as in every fabbrica file."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def connector_config(
    args: argparse.Namespace,
    influx: Service,
    mosquitto: Service | None,
    opcua_port: int | None,
    work: Path,
    health_s: float,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": CONNECTOR,
        "sink": {
            "type": "influxdb1",
            "url": f"http://127.0.0.1:{influx.port}",
            "database": DATABASE,
            "batch_size": args.batch_size,
            "flush_interval": f"{args.flush_interval}s",
        },
        "spool": {"path": str(work / "spool"), "max_bytes": "1GB"},
        "health": {"interval": f"{health_s:g}s"},
    }
    if opcua_port is not None:
        config["opcua"] = [
            {
                "name": "plc",
                "endpoint": f"opc.tcp://127.0.0.1:{opcua_port}",
                "nodes": [f"Objects/{LINE}/*/*"],
                "sampling_interval": f"{1000 / args.rate_hz:g}ms",
                "queue_size": 1000,
                "measurement": "machine",
                "security_policy": "None",
            }
        ]
    if mosquitto is not None:
        config["mqtt"] = [
            {
                "name": "broker",
                "url": f"mqtt://127.0.0.1:{mosquitto.port}",
                "client_id": "soak-connector",
                "topics": [{"filter": f"factory/{LINE}/+/+", "format": "json", "qos": 1}],
            }
        ]
    return config


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(value for value in values if not math.isnan(value))
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def slope_per_hour(times_s: list[float], values: list[float]) -> float:
    pairs = [(t, v) for t, v in zip(times_s, values, strict=True) if not math.isnan(v)]
    if len(pairs) < 2:
        return math.nan
    fit = statistics.linear_regression([t for t, _ in pairs], [v for _, v in pairs])
    return fit.slope * 3600


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    duration = args.minutes * 60
    mqtt_stations = round(args.stations * args.mqtt_share)
    opcua_stations = args.stations - mqtt_stations
    per_tick = {"opcua": opcua_stations * args.signals, "mqtt": mqtt_stations * args.signals}
    offered = args.stations * args.signals * args.rate_hz
    print(
        f"soak: {args.stations} stations x {args.signals} signals x {args.rate_hz:g} Hz "
        f"= {offered:g} values/s "
        f"({opcua_stations} stations over OPC UA, {mqtt_stations} over MQTT) for {args.minutes:g} min "
        f"into InfluxDB 1.x; results in {out}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="fabbrica-soak-"))
    services: list[Service] = []
    generators: list[Generator] = []
    connector: subprocess.Popen[bytes] | None = None
    samples: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        influxd = start_influxd(work / "influxdb")
        services.append(influxd)
        mosquitto = start_mosquitto(work / "mosquitto") if mqtt_stations else None
        if mosquitto is not None:
            services.append(mosquitto)
        influx = Influx(influxd.port)
        opcua_port = free_port() if opcua_stations else None
        if opcua_port is not None:
            generators.append(Generator("opcua", opcua_port, 0, opcua_stations, args))
        if mosquitto is not None:
            generators.append(Generator("mqtt", mosquitto.port, opcua_stations, mqtt_stations, args))
        for generator in generators:
            wait_for(
                lambda g=generator: g.status.get("ready") or g.process.poll() is not None,
                120,
                f"{generator.role} generator start",
            )
            if generator.process.poll() is not None:
                raise RuntimeError(f"{generator.role} generator exited with {generator.process.returncode}")
        health_s = min(args.sample_every / 2, 5.0)
        config = connector_config(args, influxd, mosquitto, opcua_port, work, health_s)
        config_path = out / "connect.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = out / "connector.log"
        log_path.write_bytes(b"")
        command = [sys.executable, "-m", "fabbrica", "-v", "connect", str(config_path)]
        if args.profile:
            command[1:1] = ["-m", "cProfile", "-o", str(out / "connector.prof")]
        with open(log_path, "ab") as log:
            connector = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        proc = psutil.Process(connector.pid)
        if mosquitto is not None:
            wait_for(
                lambda: "broker: connected as" in log_path.read_text(errors="replace"),
                120,
                "the connector's MQTT session",
            )
        for generator in generators:  # every OPC UA variable monitored before the first value
            wait_for(
                lambda g=generator: g.status.get("monitored", 0) >= g.status.get("variables", 1),
                180,
                f"the connector's subscription to the {generator.role} generator",
            )
        time.sleep(1.0)
        start = math.ceil(time.time()) + 1.0
        start_ns = int(start * 1e9)
        for generator in generators:
            generator.go(start, duration)
        time.sleep(max(0.0, start - time.time()))
        print(
            f"soak: started at {datetime.fromtimestamp(start, UTC).isoformat()}, "
            f"sampling every {args.sample_every:g} s",
            flush=True,
        )

        counter = StoredCounter(influx, start_ns, margin_s=max(60.0, 3 * args.sample_every))
        others = {
            name: psutil.Process(pid)
            for name, pid in [(g.role + "_generator", g.process.pid) for g in generators]
            + [(s.name, s.process.pid) for s in services if s.process is not None]
        }
        for process in [proc, *others.values()]:
            process.cpu_percent(None)
        log_offset = 0
        errors = warnings = 0
        examples: list[str] = []
        previous: dict[str, Any] | None = None
        next_sample = start
        while True:
            next_sample += args.sample_every
            end_of_run = next_sample >= start + duration - 1e-6
            if end_of_run:
                next_sample = start + duration
            time.sleep(max(0.0, next_sample - time.time()))
            if connector.poll() is not None:
                raise RuntimeError(f"the connector exited with {connector.returncode} during the soak")
            for generator in generators:
                if generator.process.poll() is not None and generator.final is None:
                    raise RuntimeError(
                        f"the {generator.role} generator exited with {generator.process.returncode}"
                    )
            now = time.time()
            new_errors, new_warnings, log_offset, new_examples = log_levels(log_path, log_offset)
            errors, warnings = errors + new_errors, warnings + new_warnings
            examples = (examples + new_examples)[-20:]
            query_began = influx.seconds
            health = influx.health()
            stored = counter.count(int(now * 1e9))
            newest = influx.newest()
            now = time.time()  # after the query: the newest value may be younger than the sample instant
            generated = {g.role: int(g.status.get("generated", 0)) for g in generators}
            e2e = {
                protocol: (now - stamp / 1e9) if stamp is not None and generated.get(protocol) else math.nan
                for protocol, stamp in newest.items()
                if per_tick[protocol]
            }
            sample: dict[str, Any] = {
                "t_s": round(now - start, 2),
                "rss_mb": round(rss_mb(proc), 2),
                "cpu_pct": round(proc.cpu_percent(None), 1),
                "lag_s": round(float(health.get("lag_s", math.nan)), 3),
                "e2e_lag_s": round(max(e2e.values()), 3) if e2e else math.nan,
                **{f"e2e_lag_{protocol}_s": round(value, 3) for protocol, value in e2e.items()},
                "generated": sum(generated.values()),
                "stored": sum(stored.values()),
                **{f"generated_{protocol}": value for protocol, value in generated.items()},
                **{f"stored_{protocol}": stored[protocol] for protocol in generated},
                **{
                    key: health.get(key, math.nan)
                    for key in ("points_in", "points_written", "spooled", "dropped", "rejected", "reconnects")
                },
                "errors": errors,
                "warnings": warnings,
                **{f"{g.role}_generator_lag_s": g.status.get("lag_s", math.nan) for g in generators},
                **{f"{name}_rss_mb": round(rss_mb(process), 1) for name, process in others.items()},
                **{
                    f"{name}_cpu_pct": round(process.cpu_percent(None), 1) for name, process in others.items()
                },
                "load_1min": round(os.getloadavg()[0], 2),
                "query_s": round(influx.seconds - query_began, 3),
            }
            sample["backlog"] = sample["generated"] - sample["stored"]
            if previous is not None:
                span = sample["t_s"] - previous["t_s"]
                for key in ("generated", "stored", "points_in", "points_written"):
                    try:
                        sample[f"{key}_per_s"] = round((sample[key] - previous[key]) / span, 1)
                    except (TypeError, ZeroDivisionError):
                        sample[f"{key}_per_s"] = math.nan
            samples.append(sample)
            previous = sample
            print(
                f"  t={sample['t_s']:7.1f} s  rss {sample['rss_mb']:6.1f} MB  cpu {sample['cpu_pct']:5.1f}%  "
                f"lag {sample['lag_s']:.2f} s  e2e {sample['e2e_lag_s']:.2f} s  "
                f"generated {sample['generated']:,}  stored {sample['stored']:,}  "
                f"errors {errors}  load {sample['load_1min']}",
                flush=True,
            )
            if end_of_run:
                break

        # drain: the generators finish and wait for their last acknowledgements; then the connector
        for generator in generators:
            wait_for(
                lambda g=generator: g.final is not None or g.process.poll() is not None,
                180,
                f"the {generator.role} generator's end",
            )
        finals = {g.role: g.final or {} for g in generators}
        generated_total = {role: int(final.get("generated", 0)) for role, final in finals.items()}
        drain_began = time.time()
        last_total, last_change = -1, time.monotonic()
        while True:
            stored_now = influx.count(start_ns)
            total = sum(stored_now.values())
            if total >= sum(generated_total.values()):
                break
            if total != last_total:
                last_total, last_change = total, time.monotonic()
            if time.monotonic() - last_change > 30 or time.time() - drain_began > args.drain_timeout:
                notes.append(
                    f"drain stopped after {time.time() - drain_began:.0f} s with "
                    f"{sum(generated_total.values()) - total:,} values missing"
                )
                break
            time.sleep(2.0)
        drain_s = time.time() - drain_began
        rss_end = rss_mb(proc)
        connector.send_signal(signal.SIGTERM)
        code = connector.wait(timeout=120)
        connector = None
        if code != 0:
            notes.append(f"the connector exited with {code}")
        new_errors, new_warnings, log_offset, new_examples = log_levels(log_path, log_offset)
        errors, warnings = errors + new_errors, warnings + new_warnings
        examples = (examples + new_examples)[-20:]
        stored_final = influx.count(start_ns)
        health_final = influx.health()
        per_series = round(duration * args.rate_hz)
        gaps = influx.gaps(start_ns, per_series)
        summary = summarize(
            args,
            samples,
            generated_total,
            stored_final,
            finals,
            health_final,
            errors,
            warnings,
            examples,
            gaps,
            drain_s,
            rss_end,
            notes,
        )
        write_outputs(out, samples, summary)
        if args.profile:
            write_profile(out)
        return summary
    finally:
        if connector is not None and connector.poll() is None:
            connector.kill()
            connector.wait()
        for generator in generators:
            generator.stop()
        for service in services:
            service.stop()
        if args.keep:
            print(f"soak: servers' data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def summarize(
    args: argparse.Namespace,
    samples: list[dict[str, Any]],
    generated: dict[str, int],
    stored: dict[str, int],
    finals: dict[str, dict[str, Any]],
    health: dict[str, Any],
    errors: int,
    warnings: int,
    examples: list[str],
    gaps: list[str],
    drain_s: float,
    rss_end: float,
    notes: list[str],
) -> dict[str, Any]:
    times = [s["t_s"] for s in samples]
    rss = [s["rss_mb"] for s in samples]
    half = [s for s in samples if s["t_s"] >= times[-1] / 2]
    slope = slope_per_hour([s["t_s"] for s in half], [s["rss_mb"] for s in half])
    lags = [float(s["lag_s"]) for s in samples if not _missing(s["lag_s"])]
    e2e = [float(s["e2e_lag_s"]) for s in samples if not _missing(s["e2e_lag_s"])]
    worst = [
        max(float(s[key]) for key in ("lag_s", "e2e_lag_s") if not _missing(s[key]))
        for s in samples
        if not (_missing(s["lag_s"]) and _missing(s["e2e_lag_s"]))
    ]
    generated_total, stored_total = sum(generated.values()), sum(stored.values())
    counters = {
        key: health.get(key)
        for key in ("points_in", "points_written", "spooled", "dropped", "rejected", "reconnects")
    }
    max_lag = max((v for v in worst if not math.isnan(v)), default=math.nan)
    verdict = {
        "flat_memory": bool(not math.isnan(slope) and abs(slope) <= args.flat_mb_per_hour),
        "lag_under_2s": bool(not math.isnan(max_lag) and max_lag < args.lag_goal),
        "no_errors": bool(
            errors == 0
            and not counters["dropped"]
            and not counters["rejected"]
            and stored_total == generated_total
            and not gaps
            and not notes
        ),
    }
    if times[-1] / 2 < 600:
        notes.append(
            f"memory: the second half lasted {times[-1] / 120:.1f} min; a slope from so short a span "
            "is mostly noise (the goal is judged on the 30-minute run)"
        )
    cpu = [s["cpu_pct"] for s in samples[1:]]
    loads = [s["load_1min"] for s in samples]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {
            "minutes": args.minutes,
            "stations": args.stations,
            "signals": args.signals,
            "rate_hz": args.rate_hz,
            "mqtt_share": args.mqtt_share,
            "values_per_s": args.stations * args.signals * args.rate_hz,
            "sample_every_s": args.sample_every,
            "batch_size": args.batch_size,
            "flush_interval_s": args.flush_interval,
            "profile": args.profile,
            "cores": os.cpu_count(),
        },
        "memory": {
            "rss_start_mb": rss[0],
            "rss_end_mb": round(rss_end, 2),
            "rss_max_mb": max(rss),
            "slope_mb_per_hour_second_half": round(slope, 2),
            "goal_mb_per_hour": args.flat_mb_per_hour,
        },
        "lag": {
            "connector_max_s": round(max(lags, default=math.nan), 3),
            "connector_p99_s": round(percentile(lags, 0.99), 3),
            "e2e_max_s": round(max(e2e, default=math.nan), 3),
            "e2e_p99_s": round(percentile(e2e, 0.99), 3),
            "max_s": round(max_lag, 3),
            "p99_s": round(percentile(worst, 0.99), 3),
            "goal_s": args.lag_goal,
            "generator_worst_s": {role: final.get("worst_lag_s") for role, final in finals.items()},
        },
        "cpu": {
            "connector_mean_pct": round(statistics.fmean(cpu), 1) if cpu else None,
            "connector_max_pct": max(cpu, default=None),
            "load_1min_mean": round(statistics.fmean(loads), 2),
            "load_1min_max": max(loads),
        },
        "errors": {
            "error_lines": errors,
            "warning_lines": warnings,
            "log_examples": examples,
            **counters,
        },
        "points": {
            "generated": generated_total,
            "stored": stored_total,
            "missing": generated_total - stored_total,
            "generated_by_protocol": generated,
            "stored_by_protocol": stored,
            "mqtt_acked_by_broker": finals.get("mqtt", {}).get("acked"),
            "series_with_wrong_counts": gaps[:20],
            "series_with_wrong_counts_total": len(gaps),
            "drain_s": round(drain_s, 1),
        },
        "notes": notes,
        "verdict": verdict,
        "passed": all(verdict.values()),
    }


def write_outputs(out: Path, samples: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    columns: list[str] = []
    for sample in samples:
        columns += [key for key in sample if key not in columns]
    with open(out / "samples.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(samples)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    plot(out, samples, summary)


def plot(out: Path, samples: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t_s"] / 60 for s in samples]
    figure, (memory, lag, rates) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    parameters = summary["parameters"]
    figure.suptitle(
        f"fabbrica connect soak: {parameters['stations']} stations x {parameters['signals']} signals x "
        f"{parameters['rate_hz']:g} Hz ({parameters['values_per_s']:g} values/s), "
        f"verdict: {verdict_text(summary['verdict'])}",
        fontsize=10,
    )
    memory.plot(minutes, [s["rss_mb"] for s in samples], marker=".", label="connector RSS")
    half = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] / 2]
    slope = summary["memory"]["slope_mb_per_hour_second_half"]
    if len(half) >= 2 and not math.isnan(slope):
        fit = statistics.linear_regression([s["t_s"] for s in half], [s["rss_mb"] for s in half])
        memory.plot(
            [s["t_s"] / 60 for s in half],
            [fit.intercept + fit.slope * s["t_s"] for s in half],
            "--",
            label=f"fit over the second half: {slope:+.1f} MB/h",
        )
    memory.set_ylabel("MB")
    memory.legend(loc="upper left", fontsize=8)
    lag.plot(minutes, [s["lag_s"] for s in samples], marker=".", label="connector lag_s (health)")
    lag.plot(minutes, [s["e2e_lag_s"] for s in samples], marker=".", label="end to end (newest stored)")
    lag.axhline(summary["lag"]["goal_s"], color="red", linestyle=":", label="goal")
    lag.set_ylabel("lag, s")
    lag.legend(loc="upper left", fontsize=8)
    for key, label in (
        ("generated_per_s", "generated"),
        ("points_in_per_s", "connector in"),
        ("points_written_per_s", "written"),
        ("stored_per_s", "stored (by timestamp)"),
    ):
        rates.plot(minutes[1:], [s.get(key, math.nan) for s in samples[1:]], marker=".", label=label)
    cpu = rates.twinx()
    cpu.plot(minutes, [s["cpu_pct"] for s in samples], color="grey", alpha=0.5, label="connector CPU %")
    cpu.set_ylabel("CPU %")
    rates.set_ylabel("values/s")
    rates.set_xlabel("minutes")
    rates.legend(loc="lower left", fontsize=8)
    cpu.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    for suffix in ("png", "svg"):
        figure.savefig(out / f"soak.{suffix}", dpi=110)
    plt.close(figure)


def write_profile(out: Path) -> None:
    import io
    import pstats

    path = out / "connector.prof"
    if not path.exists():
        return
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(40)
    (out / "connector-profile.txt").write_text(text.getvalue())


def verdict_text(verdict: dict[str, bool]) -> str:
    return ", ".join(f"{goal} {'ok' if passed else 'FAILED'}" for goal, passed in verdict.items())


def print_summary(summary: dict[str, Any], out: Path) -> None:
    memory, lag, points, errors = summary["memory"], summary["lag"], summary["points"], summary["errors"]
    print(f"soak summary ({out}):")
    print(
        f"  memory: RSS {memory['rss_start_mb']:.1f} -> {memory['rss_end_mb']:.1f} MB "
        f"(max {memory['rss_max_mb']:.1f}), slope over the second half "
        f"{memory['slope_mb_per_hour_second_half']:+.1f} MB/h (goal: within "
        f"+-{memory['goal_mb_per_hour']:g})"
    )
    print(
        f"  lag: connector max {lag['connector_max_s']:.2f} s, p99 {lag['connector_p99_s']:.2f} s; "
        f"end to end max {lag['e2e_max_s']:.2f} s, p99 {lag['e2e_p99_s']:.2f} s (goal < {lag['goal_s']:g} s)"
    )
    print(
        f"  points: generated {points['generated']:,}, stored {points['stored']:,} "
        f"(missing {points['missing']:,}), drain {points['drain_s']:.0f} s"
    )
    print(
        f"  errors: {errors['error_lines']} ERROR lines, {errors['warning_lines']} warnings, "
        f"dropped {errors['dropped']}, rejected {errors['rejected']}, reconnects {errors['reconnects']}"
    )
    print(
        f"  cpu: connector mean {summary['cpu']['connector_mean_pct']}%, "
        f"load average mean {summary['cpu']['load_1min_mean']} on {summary['parameters']['cores']} cores"
    )
    for note in summary["notes"]:
        print(f"  note: {note}")
    print(f"  verdict: {verdict_text(summary['verdict'])}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak (default 30)")
    parser.add_argument("--stations", type=int, default=50, help="stations (default 50)")
    parser.add_argument("--signals", type=int, default=10, help="signals per station (default 10)")
    parser.add_argument(
        "--rate-hz", type=float, default=10.0, help="samples per signal per second (default 10)"
    )
    parser.add_argument(
        "--mqtt-share",
        type=float,
        default=0.5,
        help="share of the stations published over MQTT; the others are OPC UA (default 0.5)",
    )
    parser.add_argument(
        "--sample-every", type=duration_argument, default=10.0, help="sampling period (default 10s)"
    )
    parser.add_argument("--out", default=None, help="results folder (default soak-YYYYmmdd-HHMMSS)")
    parser.add_argument("--batch-size", type=int, default=5000, help="sink batch size (default 5000)")
    parser.add_argument(
        "--flush-interval", type=duration_argument, default=0.5, help="sink flush interval (default 0.5s)"
    )
    parser.add_argument("--lag-goal", type=duration_argument, default=2.0, help="lag goal (default 2s)")
    parser.add_argument(
        "--flat-mb-per-hour",
        type=float,
        default=10.0,
        help="memory counts as flat when the slope is within +- this (default 10 MB/h)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=duration_argument,
        default=300.0,
        help="longest wait for the connector to store the backlog at the end (default 300s)",
    )
    parser.add_argument("--profile", action="store_true", help="run the connector under cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the servers' temporary data")
    parser.add_argument("--role", choices=("opcua", "mqtt"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "opcua":
        asyncio.run(opcua_generator(args.port, args.first, args.stations, args.signals, args.rate_hz))
        return
    if args.role == "mqtt":
        mqtt_generator(args.port, args.first, args.stations, args.signals, args.rate_hz)
        return
    if not 0 <= args.mqtt_share <= 1:
        parser.error("--mqtt-share: between 0 and 1")
    if args.minutes <= 0 or args.stations < 1 or args.signals < 1 or args.rate_hz <= 0:
        parser.error("--minutes, --stations, --signals and --rate-hz must be positive")
    args.out = args.out or f"soak-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = run(args)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print_summary(summary, Path(args.out).resolve())


if __name__ == "__main__":
    main()

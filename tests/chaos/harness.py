"""The fault-injection harness: a served line, the connector, a fault, and the bill.

One run: `fabbrica line serve` plays the demonstrator line (OPC UA PLC + MQTT sensors, its
ground truth written with `--truth`), `fabbrica connect` carries both sources into InfluxDB
1.x, a scenario breaks something mid-run and heals it, the line finishes, the connector stops
gracefully, and the database is compared with the truth file:

- lost: truth points missing from the database (OPC UA values, part events, sensor messages);
- duplicated: database points with no truth point of their own (a value stored twice under two
  timestamps, a message counted twice); a point written twice at the same series and
  timestamp overwrites itself and is no duplicate;
- wrong values: stored points whose value is not the truth's at their timestamp (PLC variables,
  part events field by field, sensor readings against every sample the line handed to the
  broker, which the line keeps with `mqtt.truth_readings`), or a reading at an instant the line
  never published; compared exactly (`same_value`), and any one fails the scenario;
- dropped (reported): what the connector says it dropped (spool full), from its last
  `connector_health` point;
- opcua gap: PLC values that changed while no OPC UA session existed (connector dead, PLC
  down): a subscription only sees the current value, so these are out of any connector's
  reach without history on the PLC; counted apart from `lost`;
- recovery: wall seconds from the end of the fault until the database held every point
  timestamped up to the end of the fault (polled every 0.25 s).

Used by tests/chaos/test_chaos.py (short durations) and `python -m tests.chaos.campaign` (full).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.chaos.proxy import FaultProxy
from tests.connectors.conftest import (
    FABBRICA,
    ROOT,
    Connector,
    Service,
    find_binary,
    free_port,
    influx_ping,
    influx_rows,
    influxd_service,
    influxql,
    wait_until,
)

LINE_FILE = ROOT / "simulations/lines/demonstrator.yaml"
LINE = "demonstrator"
SPEED = 60
PLC_SCRIPT = ROOT / "tests/connectors/opcua_server.py"


# the PLC variables the truth file follows (one connector point each per change); the process
# signals (SpindleSpeed, ...) have no truth and are left out, so that every point has one
PLC_VARIABLES = (
    "State",
    "Machine[0-9]*State",  # not MachineryItemState, which has no truth
    "PartsProduced",
    "PartsScrapped",
    "LastCycleTime",
    "Time*",
    "Occupancy",
    "OccupancySeconds",
    "IdealCycleTime",
    "BufferLevel",  # what the live twin rebuilds the line's state from (twinloop.state)
    "PartsStarted",
    "Product",
    "Machine[0-9]*PartsStarted",
    "Machine[0-9]*Product",
)
# the sample hardware's sensors at 10 samples per wall second (2 for ambient), the PLC without security
HARDWARE = {
    "opcua": {"security": {"policies": ["None"]}, "linger": "1s"},
    "mqtt": {
        "truth_readings": True,  # every sample in the truth file: stored readings are checked against it
        "sensors": [
            {"name": "energy", "unit": "kWh", "idle": 0.3, "tau": 1, "integrate": True, "rate": 10,
             "levels": {"working": 7.5, "setup": 2.4, "blocked": 1.3, "starved": 1.3, "down": 0.5}},
            {"name": "vibration", "unit": "mm/s", "idle": 0.1, "noise": 0.04, "tau": 0.5, "rate": 10,
             "levels": {"working": 4.2, "setup": 1.1, "blocked": 0.4, "starved": 0.4, "down": 0.1}},
            {"name": "ambient", "unit": "degC", "idle": 22.5, "noise": 0.08, "rate": 2},
        ]
    },
}  # fmt: skip


@dataclass(frozen=True)
class Timing:
    """Wall seconds: the fault starts `fault_at` after the line serves and lasts `fault_s`;
    the line goes on `after_s` past the end of the fault (once the fault says it is healed:
    a restarted connector when it has read back what it missed, however long a loaded machine
    takes; the line is stopped then, not after a fixed time)."""

    fault_at: float
    fault_s: float
    after_s: float


# -- servers ---------------------------------------------------------------------------------------


class Stack:
    """Mosquitto (persistent) and InfluxDB 1.x in a folder of their own, each restartable on its port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.mosquitto = self._mosquitto(folder / "mosquitto")
        self.influxdb = self._influxdb(folder / "influxdb")

    def start(self) -> Stack:
        self.mosquitto.start()
        self.start_influxdb()
        return self

    def stop(self) -> None:
        self.mosquitto.stop()
        self.influxdb.stop()

    def ensure_running(self) -> None:
        """Start again whatever a failed scenario left stopped."""
        if self.mosquitto.process is None or self.mosquitto.process.poll() is not None:
            self.mosquitto.start()
        if self.influxdb.process is None or self.influxdb.process.poll() is not None:
            self.start_influxdb()

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mosquitto.port}"

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influxdb.port}"

    def start_influxdb(self) -> None:
        self.influxdb.start()
        wait_until(lambda: influx_ping(self.influx_url), timeout=30, interval=0.05)

    @staticmethod
    def _mosquitto(folder: Path) -> Service:
        binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        user = "user root\n" if os.geteuid() == 0 else ""
        # autosave every second: what a kill -9 can take from the broker is at most the last second
        # of session changes (the default, 1800 s, would forget every session made since the start)
        (folder / "mosquitto.conf").write_text(
            user + f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 0\n"
            "log_dest stdout\n"
            "log_type error\n"
            "log_type warning\n"
        )
        return Service("mosquitto", [binary, "-c", str(folder / "mosquitto.conf")], port, folder)

    @staticmethod
    def _influxdb(folder: Path) -> Service:
        return influxd_service(folder)


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    mode: str
    fault_s: float
    expected: int
    stored: int
    lost: int
    duplicated: int
    dropped_reported: int
    opcua_gap: int
    recovery_s: float | None
    reconnects: int
    wall_s: float
    details: dict[str, Any] = field(default_factory=dict)
    # values a killed PLC wrote in its last publishing interval and never sent: they died with it
    unsent_at_kill: int = 0
    # stored values that differ from the truth at their timestamp (examples in details)
    wrong_values: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Run:
    """The line, the connector and what the scenario needs, in `folder`; `execute` does it all."""

    def __init__(
        self,
        stack: Stack,
        folder: Path,
        name: str,
        timing: Timing,
        *,
        mode: str = "short",
        sink_port: int | None = None,
        mqtt_port: int | None = None,
        spool_max: int | str = "256MB",
        health_interval: str = "1s",
        standalone_plc: bool = False,
    ) -> None:
        self.stack = stack
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.mode = mode
        self.timing = timing
        tag = uuid.uuid4().hex[:6]
        self.database = f"chaos_{name.replace('-', '_')}_{tag}"
        self.prefix = f"chaos{tag}"
        self.client_id = f"chaos-{name}-{tag}"
        self.opcua_port = listening_port()
        self.plc: Service | None = None
        self.plc_truth = folder / "plc-truth.jsonl"
        if standalone_plc:
            self.plc = self._standalone_plc()
        self.truth_file = folder / "truth.json"
        self.config = self._write_config(sink_port, mqtt_port, spool_max, health_interval)
        self.connector = Connector(self.config)
        self.line: subprocess.Popen[bytes] | None = None
        self.line_log = folder / "line.log"
        self.fault_start = 0.0
        self.fault_end = 0.0
        self.healed = 0.0  # monotonic: when the fault returned, healed
        self.plc_end = 0.0

    # -- configuration -----------------------------------------------------------------------

    def _write_config(
        self, sink_port: int | None, mqtt_port: int | None, spool_max: int | str, health: str
    ) -> Path:
        sink_url = f"http://127.0.0.1:{sink_port or self.stack.influxdb.port}"
        mqtt_url = f"mqtt://127.0.0.1:{mqtt_port or self.stack.mosquitto.port}"
        opcua = [
            {
                "endpoint": f"opc.tcp://127.0.0.1:{self.opcua_port}",
                "nodes": [f"Objects/{LINE}/*/{variable}" for variable in PLC_VARIABLES],
                "sampling_interval": "0s",
                "reconnect_max": "1s",
                "timeout": "2s",
                "stale_after": "5s",
            }
        ]
        if self.plc is not None:
            opcua.append(
                {
                    "endpoint": f"opc.tcp://127.0.0.1:{self.plc.port}/",
                    "nodes": ["Objects/Line1/*/*"],
                    "sampling_interval": "0s",
                    "reconnect_max": "1s",
                    "timeout": "2s",
                    "stale_after": "5s",
                }
            )
        config = {
            "name": f"chaos-{self.name}",
            "sink": {
                "type": "influxdb1",
                "url": sink_url,
                "database": self.database,
                "flush_interval": "0.2s",
                "timeout": "2s",
                "retry_initial": "0.2s",
                "retry_max": "1s",
            },
            "spool": {"path": "spool", "max_bytes": spool_max},
            "health": {"interval": health},
            "shutdown_timeout": "20s",
            "opcua": opcua,
            "mqtt": [
                {
                    "url": mqtt_url,
                    "client_id": self.client_id,
                    "keepalive": 5,
                    "reconnect_max": "1s",
                    "topics": [{"filter": f"{self.prefix}/+/+/+", "format": "json"}],
                }
            ],
        }
        path = self.folder / "connect.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        hardware = self.folder / "hardware.yaml"
        hardware.write_text(yaml.safe_dump(HARDWARE, sort_keys=False))
        return path

    def _standalone_plc(self, start_count: int = 0) -> Service:
        port = self.plc.port if self.plc is not None else listening_port()
        env = {**os.environ, "TRUTH_FILE": str(self.plc_truth), "START_COUNT": str(start_count)}
        command = [sys.executable, str(PLC_SCRIPT), str(port), "0.1"]
        service = Service(f"plc-{port}", command, port, self.folder, env)
        service.start()
        return service

    def restart_plc(self, down_s: float) -> None:
        """Stop the standalone PLC for `down_s`, start it again counting on where it stopped."""
        assert self.plc is not None
        self.plc.stop(signal.SIGKILL)
        last = 0
        for line in self.plc_truth.read_text().splitlines():
            if line.strip():
                last = max(last, json.loads(line)["value"]) if '"PartsProduced"' in line else last
        time.sleep(down_s)
        self.plc = self._standalone_plc(start_count=int(last))

    # -- the run -----------------------------------------------------------------------------

    def _presubscribe(self) -> None:
        """Create the connector's persistent MQTT session before anything is published, so that
        the connector and the line can start together without the first messages going nowhere."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        done = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        client.on_subscribe = lambda *args: done.set()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 86400
        client.connect("127.0.0.1", self.stack.mosquitto.port, clean_start=False, properties=properties)
        client.loop_start()
        client.subscribe(f"{self.prefix}/+/+/+", qos=1)
        if not done.wait(10):
            raise RuntimeError("the broker did not acknowledge the subscription")
        client.disconnect()
        client.loop_stop()

    def start(self) -> None:
        self._presubscribe()
        self.connector.start()
        with open(self.line_log, "wb") as log:
            self.line = subprocess.Popen(
                [*FABBRICA, "line", "serve", str(LINE_FILE), "--speed", str(SPEED),
                 "--opcua", f"opc.tcp://127.0.0.1:{self.opcua_port}", "--mqtt", self.stack.mqtt_url,
                 "--mqtt-prefix", self.prefix,
                 "--truth", str(self.truth_file), "--seed", "3",
                 "--hardware", str(self.folder / "hardware.yaml")],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
            )  # fmt: skip
        wait_until(lambda: "serving line" in self.line_log.read_text() or self._line_died(), timeout=60)
        wait_until(lambda: "connected, " in self.connector.output() or self._connector_died(), timeout=30)

    def _line_died(self) -> bool:
        if self.line is not None and self.line.poll() is not None:
            raise RuntimeError(f"the line exited early:\n{self.line_log.read_text()[-3000:]}")
        return False

    def _connector_died(self) -> bool:
        process = self.connector.process
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the connector exited early:\n{self.connector.output()[-3000:]}")
        return False

    def execute(self, fault: Callable[[Run], None]) -> Outcome:
        began = time.monotonic()
        try:
            self.start()
            time.sleep(self.timing.fault_at)
            self.fault_start = time.time()
            fault(self)  # returns once the fault is healed; sets fault_end if it knows better
            self.healed = time.monotonic()
            if not self.fault_end:
                self.fault_end = time.time()
            monitor = Monitor(self.stack.influx_url, self.database, self.fault_end)
            monitor.start()
            try:
                self._finish()
            finally:
                monitor.stop()
            outcome = self.compare(monitor)
        finally:
            self.cleanup()
        outcome.wall_s = round(time.monotonic() - began, 1)
        return outcome

    def _finish(self) -> None:
        assert self.line is not None
        time.sleep(max(0.0, self.healed + self.timing.after_s - time.monotonic()))
        self._line_died()
        self.line.send_signal(signal.SIGTERM)  # the line writes its truth and stops serving
        code = self.line.wait(timeout=120)
        if code != 0:
            raise RuntimeError(f"the line failed ({code}):\n{self.line_log.read_text()[-3000:]}")
        if self.plc is not None:  # the standalone PLC ends with the line; what it wrote last is cut off
            self.plc_end = time.time() - PUBLISH_MARGIN_S
            self.plc.stop(signal.SIGKILL)
        if self.connector.process is None or self.connector.process.poll() is not None:
            raise RuntimeError(f"the connector is not running:\n{self.connector.output()[-3000:]}")
        expected_messages = sum(
            counts["published"]
            for station in json.loads(self.truth_file.read_text())["stations"].values()
            for topic, counts in station.get("messages", {}).items()
        )
        # what the broker holds for the connector has to come in before it is told to stop
        deadline = time.monotonic() + 120
        last, stable = -1, 0
        while time.monotonic() < deadline:
            received = _count(self.stack.influx_url, self.database, '"sensor","part"', "")
            stable = stable + 1 if received == last else 0
            last = received
            if (received >= expected_messages and stable >= 1) or stable >= 12:
                break
            time.sleep(0.25)
        code = self.connector.stop(timeout=60)
        if code != 0:
            raise RuntimeError(f"the connector exited with {code}:\n{self.connector.output()[-3000:]}")

    def cleanup(self) -> None:
        if self.line is not None and self.line.poll() is None:
            self.line.kill()
            self.line.wait()
        if self.connector.process is not None and self.connector.process.poll() is None:
            self.connector.process.kill()
            self.connector.process.wait()
        if self.plc is not None:
            self.plc.stop(signal.SIGKILL)

    # -- the bill ----------------------------------------------------------------------------

    def compare(self, monitor: Monitor) -> Outcome:
        truth = json.loads(self.truth_file.read_text())
        url, db = self.stack.influx_url, self.database
        gap_window = self.name in GAP_SCENARIOS
        details: dict[str, Any] = {"fault": [round(self.fault_start, 3), round(self.fault_end, 3)]}
        stored = Stored(
            machine=influx_rows(url, db, "machine", f"\"line\" = '{LINE}'"),
            parts=influx_rows(url, db, "part", f"\"line\" = '{LINE}'"),
            sensors=influx_rows(url, db, "sensor", f"\"line\" = '{LINE}'"),
        )
        gap_from = self.fault_start - PUBLISH_MARGIN_S if gap_window else None
        details.update(line_bill(truth, stored, gap_from))

        # the standalone PLC (OPC UA restart scenario)
        if self.plc_truth.exists():
            plc_want: dict[tuple[str, str], dict[int, Any]] = defaultdict(dict)
            for line in self.plc_truth.read_text().splitlines():
                if line.strip():
                    item = json.loads(line)
                    stamp = iso_ns(item["ts"])
                    if stamp < self.plc_end * 1e9:
                        plc_want[item["station"], item["name"]][stamp] = item["value"]
            plc_have: dict[tuple[str, str], dict[int, Any]] = defaultdict(dict)
            for row in influx_rows(url, db, "machine", "\"line\" = 'Line1'"):
                for variable in ("State", "PartsProduced", "Temperature"):
                    if row.get(variable) is not None:
                        plc_have[row["station"], variable][row["time"]] = row[variable]
            plc_have = {
                key: {t: v for t, v in series.items() if t < self.plc_end * 1e9}
                for key, series in plc_have.items()
            }
            details["restarted_plc"] = _series_bill(plc_want, plc_have, self.fault_start - PUBLISH_MARGIN_S)

        health = influx_rows(url, db, "connector_health")
        last = max(health, key=lambda row: row["time"]) if health else {}
        output = self.connector.output()
        details["health"] = {
            key: last.get(key) for key in ("points_in", "points_written", "spooled", "dropped")
        }
        stopped = re.findall(r"stopped: .* (\d+) dropped", output)
        details["dropped_logged_at_exit"] = int(stopped[-1]) if stopped else None
        details["connector_log_lines"] = output.count("\n")
        return Outcome(
            scenario=self.name,
            mode=self.mode,
            fault_s=round(self.fault_end - self.fault_start, 1),
            **tally(details),
            dropped_reported=int(last.get("dropped") or 0),
            recovery_s=monitor.recovery_s(),
            reconnects=int(max((row.get("reconnects") or 0) for row in health) if health else 0),
            wall_s=0.0,
            details=details,
        )


def listening_port() -> int:
    """A free port below the ephemeral range, for a server the connector dials before it listens
    (or while it restarts): a client retrying an ephemeral port nobody listens on can be given
    that same port as its own and connect to itself (TCP simultaneous open), taking it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(10_000, low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


# what the OPC UA source logs once it has read the server's history after a (re)connect
BACKFILLED = ": backfilled "

GAP_SCENARIOS = frozenset({"connector-kill", "opcua-restart"})
# a PLC killed within a publishing interval (50 ms) of a write never sends that value, and its
# history dies with it: at most two writes of the test PLC (9 variables every 0.1 s)
UNSENT_AT_KILL_MAX = 18


def goal_met(outcome: Outcome) -> bool:
    """Nothing lost, nothing twice, nothing altered, no OPC UA gap; with a full spool, lost exactly
    what was reported."""
    if outcome.duplicated or outcome.opcua_gap or outcome.wrong_values:
        return False
    if outcome.scenario == "spool-full":
        return outcome.dropped_reported > 0 and outcome.lost == outcome.dropped_reported
    allowed_unsent = UNSENT_AT_KILL_MAX if outcome.scenario == "opcua-restart" else 0
    return outcome.lost == 0 and outcome.dropped_reported == 0 and outcome.unsent_at_kill <= allowed_unsent


# values a PLC wrote this shortly before it (or the connector) was killed may never have been
# notified (publishing interval 50 ms) or committed to the spool (every 20 ms): part of the gap
PUBLISH_MARGIN_S = 0.2


def _series_bill(
    want: dict[tuple[str, str], dict[int, Any]],
    have: dict[tuple[str, str], dict[int, Any]],
    gap_from_ns: float | None,
    start_ns: int | None = None,
) -> dict[str, Any]:
    """Compare time series of PLC values.

    With `gap_from_ns` (epoch s: the fault's start less PUBLISH_MARGIN_S), a run of missing values
    from that instant up to the first value stored after the fault began is not a loss: those
    stamped before the fault are `unsent` (a PLC killed within a publishing interval of writing
    them never sent them), those from the fault on are the OPC UA `gap` (changes while no session
    existed, which backfill from the PLC's history brings back). Values before the run (before `start_ns`, or
    without it before the first value stored) are startup: the PLC showed them before the
    connector subscribed, or, at the start instant, re-stamped a value without changing it,
    which OPC UA's default data-change trigger does not report. They are counted apart.
    """
    expected = stored = lost = duplicated = gap = wrong = startup = unsent = 0
    examples: list[str] = []
    wrong_examples: list[str] = []
    fault_ns = int(gap_from_ns * 1e9) if gap_from_ns else None
    margin_ns = int(PUBLISH_MARGIN_S * 1e9)
    for key in set(want) | set(have):
        truth, db = want.get(key, {}), have.get(key, {})
        first = start_ns if start_ns is not None else min(db, default=None)
        if first is not None:
            early = {stamp for stamp in truth if stamp <= first and stamp not in db}
            early |= {stamp for stamp in db if stamp < first and stamp not in truth}
            startup += len(early)
            truth = {stamp: value for stamp, value in truth.items() if stamp not in early}
            db = {stamp: value for stamp, value in db.items() if stamp not in early}
        expected += len(truth)
        stored += len(db)
        missing = sorted(set(truth) - set(db))
        if fault_ns is not None and missing:
            resumed = min((stamp for stamp in db if stamp > fault_ns + margin_ns), default=None)
            excused = {s for s in missing if s >= fault_ns and (resumed is None or s < resumed)}
            before = {s for s in excused if s < fault_ns + margin_ns}
            unsent += len(before)
            gap += len(excused) - len(before)
            missing = [s for s in missing if s not in excused]
        lost += len(missing)
        extra = set(db) - set(truth)
        duplicated += len(extra)
        for stamp in sorted(set(db) & set(truth)):
            if not same_value(db[stamp], truth[stamp]):
                wrong += 1
                if len(wrong_examples) < 6:
                    wrong_examples.append(_wrong("/".join(key), stamp, db[stamp], truth[stamp]))
        if (missing or extra) and len(examples) < 6:
            origin = fault_ns or min(truth, default=0)
            offsets = [round((stamp - origin) / 1e9, 2) for stamp in missing[:4]]
            extras = [round((stamp - origin) / 1e9, 2) for stamp in sorted(extra)[:4]]
            examples.append(f"{'/'.join(key)}: missing at {offsets} s, extra at {extras} s (from the fault)")
    return {
        "expected": expected,
        "stored": stored,
        "lost": lost,
        "duplicated": duplicated,
        "gap": gap,
        "unsent": unsent,
        "startup": startup,
        "wrong_value": wrong,
        "examples": examples,
        "wrong_examples": wrong_examples,
    }


def tally(details: dict[str, Any]) -> dict[str, int]:
    """The Outcome's totals over the bills in `details` (the line's, and a standalone PLC's)."""
    bills = [details[key] for key in ("opcua", "restarted_plc", "parts", "sensors") if key in details]
    return {
        "expected": sum(bill["expected"] for bill in bills),
        "stored": sum(bill["stored"] for bill in bills),
        "lost": sum(bill["lost"] for bill in bills),
        "duplicated": sum(bill["duplicated"] for bill in bills),
        "opcua_gap": sum(bill.get("gap", 0) for bill in bills),
        "unsent_at_kill": sum(bill.get("unsent", 0) for bill in bills),
        "wrong_values": sum(bill["wrong_value"] for bill in bills),
    }


@dataclass
class Stored:
    """The served line's rows in the database, as `influx_rows` gives them (`time` in epoch ns,
    tags and fields by name): `machine` (OPC UA values), `parts` (part events), `sensors`."""

    machine: list[dict[str, Any]]
    parts: list[dict[str, Any]]
    sensors: list[dict[str, Any]]


# `to` is null (no field) for a scrapped part; a truth file older than issue 17 has no from/to/reworked
PART_FIELDS = (
    *("product", "cycle_time_s", "scrapped", "parts_produced", "parts_scrapped"),
    *("from", "to", "reworked"),
)


def line_bill(truth: dict[str, Any], stored: Stored, gap_from: float | None = None) -> dict[str, Any]:
    """The served line's truth file against what the database holds of it: `opcua` (every PLC
    variable's values), `parts` (every part event, field by field) and `sensors` (message counts per
    topic, and every stored reading against the sample the line published at that instant, when
    the truth file has the readings). Each part has `expected`, `stored`, `lost`, `duplicated`,
    `wrong_value` and `checked` (values compared), and names the first wrong values in
    `wrong_examples` (series, instant, stored and true value). `gap_from`: see `_series_bill`.
    """
    # OPC UA values of the served line's PLC
    want: dict[tuple[str, str], dict[int, Any]] = defaultdict(dict)
    for station, record in truth["stations"].items():
        for entry in record["states"]:
            want[station, "State"][iso_ns(entry["ts"])] = entry["state"]
        for variable, entries in record["values"].items():
            want[station, variable].update((iso_ns(entry["ts"]), entry["value"]) for entry in entries)
    variables = {variable for _, variable in want}
    start_ns = iso_ns(truth["start"])
    have: dict[tuple[str, str], dict[int, Any]] = defaultdict(dict)
    initial = 0
    for row in stored.machine:
        for variable in variables:
            value = row.get(variable)
            if value is None:
                continue
            series = want[row["station"], variable]
            if row["time"] == start_ns and value == 0 and row["time"] not in series:
                initial += 1  # the PLC's initial zero at the start; the truth lists changes only
                continue
            have[row["station"], variable][row["time"]] = value
    opcua = _series_bill(want, have, gap_from, start_ns)
    opcua["initial_zeros"] = initial
    opcua["checked"] = sum(len(set(have[key]) & set(want[key])) for key in have)

    # part events (MQTT, QoS 1)
    part_want = {
        (station, iso_ns(part["ts"])): part
        for station, record in truth["stations"].items()
        for part in record["parts"]
    }
    part_have = {(row["station"], row["time"]): row for row in stored.parts}
    wrong, examples = 0, []
    for key in sorted(set(part_want) & set(part_have)):
        for name in PART_FIELDS:
            if not same_value(part_have[key].get(name), part_want[key].get(name)):
                wrong += 1
                if len(examples) < 6:
                    examples.append(_wrong(f"{key[0]}/part.{name}", key[1], part_have[key].get(name),
                                           part_want[key].get(name)))  # fmt: skip
    parts = {
        "expected": len(part_want),
        "stored": len(part_have),
        "lost": len(set(part_want) - set(part_have)),
        "duplicated": len(set(part_have) - set(part_want)),
        "wrong_value": wrong,
        "checked": len(set(part_want) & set(part_have)) * len(PART_FIELDS),
        "wrong_examples": examples,
    }

    # sensor messages (MQTT, QoS 1): the broker-acknowledged count per topic, and each reading
    sensor_have = Counter((row["station"], row["sensor"]) for row in stored.sensors)
    sensor_want: Counter[tuple[str, str]] = Counter()
    publisher_dropped = 0
    readings: dict[tuple[str, str], dict[int, Any]] = {}
    for station, record in truth["stations"].items():
        for topic, counts in record.get("messages", {}).items():
            if topic != "events":
                sensor_want[station, topic] = counts["published"]
            publisher_dropped += counts["dropped"]
        for sensor, samples in record.get("readings", {}).items():
            readings[station, sensor] = {iso_ns(sample["ts"]): sample["value"] for sample in samples}
    wrong, checked, examples = 0, 0, []
    if readings:
        for row in sorted(stored.sensors, key=lambda row: row["time"]):
            series = readings.get((row["station"], row["sensor"]), {})
            true_value = series.get(row["time"], _NEVER)
            checked += 1
            if true_value is _NEVER or not same_value(row["value"], true_value):
                wrong += 1
                if len(examples) < 6:
                    examples.append(_wrong(f"{row['station']}/{row['sensor']}", row["time"], row["value"],
                                           true_value))  # fmt: skip
    sensors = {
        "expected": sum(sensor_want.values()),
        "stored": sum(sensor_have.values()),
        "lost": sum((sensor_want - sensor_have).values()),
        "duplicated": sum((sensor_have - sensor_want).values()),
        "publisher_dropped": publisher_dropped,
        "wrong_value": wrong,
        "checked": checked,
        "wrong_examples": examples,
    }
    return {"opcua": opcua, "parts": parts, "sensors": sensors}


class _Never:
    def __repr__(self) -> str:
        return "nothing published then"


_NEVER: Any = _Never()


def same_value(stored: Any, truth: Any) -> bool:
    """Exact equality of a stored value and the truth's.

    The data path is exact: a float goes into line protocol as Python's shortest round-trip form
    (`repr`), InfluxDB parses it to the same float64 and its JSON gives the shortest round-trip
    form back, so a stored float equals the truth's bit for bit; there is no tolerance to hide a
    corrupted value behind. The only change of form is a whole float that comes back as an integer
    (5.0 as 5), which compares equal as a number; a bool only equals a bool.
    """
    if isinstance(stored, bool) or isinstance(truth, bool):
        return type(stored) is type(truth) and stored == truth
    return bool(stored == truth)


def _wrong(series: str, stamp: int, stored: Any, truth: Any) -> str:
    return f"{series} at {ns_iso(stamp)}: stored {stored!r}, truth {truth!r}"


def ns_iso(stamp: int) -> str:
    """Epoch nanoseconds as the truth file writes instants (UTC, microseconds)."""
    seconds, rest = divmod(stamp, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"


def iso_ns(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.replace(microsecond=0).timestamp()) * 10**9 + moment.microsecond * 1000


def _count(url: str, database: str, measurements: str, where: str) -> int:
    """Sum of every field count of `measurements` (a point with n fields counts n)."""
    clause = f" WHERE {where}" if where else ""
    try:
        series = influxql(url, database, f"SELECT count(*) FROM {measurements}{clause}")
    except (OSError, AssertionError, ValueError):
        return -1
    return sum(int(value) for item in series for row in item["values"] for value in row[1:] if value)


class Monitor:
    """Polls how much of what was timestamped up to `fault_end` is in the database."""

    def __init__(self, url: str, database: str, fault_end: float, interval: float = 0.25) -> None:
        self.url = url
        self.database = database
        self.until_ns = int(fault_end * 1e9)
        self.fault_end = fault_end
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="chaos-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _count(self) -> int:
        return _count(self.url, self.database, '"sensor","part","machine"', f"time <= {self.until_ns}")

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._count()))
            self._stop.wait(self.interval)

    def recovery_s(self) -> float | None:
        final = self._count()
        for moment, count in self.samples:
            if count >= final:
                return round(max(0.0, moment - self.fault_end), 2)
        return None


# -- the scenarios ---------------------------------------------------------------------------------

SHORT = {
    "broker-kill": Timing(1.5, 1.5, 2),
    "database-down": Timing(1.5, 5, 2),
    "opcua-restart": Timing(1.5, 1.5, 2),
    "connector-kill": Timing(1.5, 1.5, 2),
    "spool-full": Timing(1.5, 6, 1.5),
    "network": Timing(1.5, 4.5, 2),
}
FULL = {
    "broker-kill": Timing(10, 10, 20),
    "database-down": Timing(10, 60, 20),
    "opcua-restart": Timing(10, 10, 20),
    "connector-kill": Timing(10, 10, 20),
    "spool-full": Timing(10, 60, 20),
    "network": Timing(10, 45, 20),
}
SCENARIOS = tuple(SHORT)


def _broker_kill(run: Run) -> None:
    run.stack.mosquitto.stop(signal.SIGKILL)
    time.sleep(run.timing.fault_s)
    run.stack.mosquitto.start()


def _database_down(run: Run) -> None:
    run.stack.influxdb.stop(signal.SIGKILL)
    time.sleep(run.timing.fault_s)
    run.stack.start_influxdb()


def _opcua_restart(run: Run) -> None:
    run.restart_plc(run.timing.fault_s)


def _connector_kill(run: Run) -> None:
    run.connector.kill()
    backfills = run.connector.output().count(BACKFILLED)
    time.sleep(run.timing.fault_s)
    run.connector.start()
    run.fault_end = time.time()
    # healed once the new process has read from the PLC's history what it missed: on a loaded
    # machine its start alone can take seconds, and the line has to serve until then
    wait_until(
        lambda: run.connector.output().count(BACKFILLED) > backfills or run._connector_died(), timeout=60
    )


def _network(run: Run) -> None:
    """Three thirds: 300 ms delay, black hole, connections cut every 0.5 s; on both paths."""
    proxies = run.proxies  # type: ignore[attr-defined]
    third = run.timing.fault_s / 3
    for proxy in proxies:
        proxy.delay(0.3)
    time.sleep(third)
    for proxy in proxies:
        proxy.heal()
        proxy.blackhole()
    time.sleep(third)
    for proxy in proxies:
        proxy.heal()  # cuts the black-holed connections
    end = time.monotonic() + third
    while time.monotonic() < end:
        for proxy in proxies:
            proxy.reset()
        time.sleep(0.5)
    for proxy in proxies:
        proxy.heal()


FAULTS: dict[str, Callable[[Run], None]] = {
    "broker-kill": _broker_kill,
    "database-down": _database_down,
    "opcua-restart": _opcua_restart,
    "connector-kill": _connector_kill,
    "spool-full": _database_down,
    "network": _network,
}


def run_scenario(stack: Stack, name: str, folder: Path, full: bool = False) -> Outcome:
    timing = (FULL if full else SHORT)[name]
    mode = "full" if full else "short"
    proxies: list[FaultProxy] = []
    options: dict[str, Any] = {}
    if name == "network":
        proxies = [FaultProxy(stack.influxdb.port).start(), FaultProxy(stack.mosquitto.port).start()]
        options = {"sink_port": proxies[0].port, "mqtt_port": proxies[1].port}
    if name == "spool-full":
        # health points would take spool room too: only the final one, after the outage
        options = {"spool_max": 1 << 16, "health_interval": "1h"}
    run = Run(stack, folder, name, timing, mode=mode, standalone_plc=name == "opcua-restart", **options)
    run.proxies = proxies  # type: ignore[attr-defined]
    try:
        outcome = run.execute(FAULTS[name])
    finally:
        for proxy in proxies:
            proxy.stop()
        stack.ensure_running()
    if proxies:
        outcome.details["proxy"] = {
            "connections": [proxy.connections for proxy in proxies],
            "resets": [proxy.resets for proxy in proxies],
        }
    return outcome

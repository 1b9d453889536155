"""`fabbrica demo`: the whole digital-twin loop on one machine, with no server to install.

1. the simulated pilot line runs in scaled real time: virtual PLCs (OPC UA, in-process) and
   sensors publishing to an embedded MQTT broker (amqtt, loopback only);
2. the connectors stream both into the embedded historian (DuckDB);
3. the twin is calibrated from the historian, validated against what the line did, and
   asked a what-if question (an experiment on the calibrated twin);
4. the line's state at the middle of the recorded window is rebuilt from the historian, and
   the calibrated twin forecasts the rest of the window from it (a fan of quantiles), to set
   against what the line then did (a network line's too: an assembly's buffer per input, the
   rework queues and the parts on a transport are rebuilt);
5. one HTML report tells the story: live KPIs, calibration fits, validation, experiment, forecast.

With `--mqtt URL` the sensors use a real broker instead, and with `--sink-config FILE` the
connectors write where that connector config says (for example InfluxDB, for Grafana).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from connectors.config import config_from_dict
from connectors.runner import run as run_connector
from connectors.sinks.config import EmbeddedSink
from simulations.hardware.config import HardwareConfig
from simulations.hardware.sensors import SensorPublisher
from simulations.hardware.serve import ServedLine, serve
from twin.calibration.estimate import StationCalibration
from twin.calibration.validate import validate
from twin.engine import simulate
from twin.experiments import Experiment, ExperimentResult
from twin.forecast import forecast
from twin.line import Line, line_from_dict, load_line, read_yaml
from twinloop.calibration import write_calibration
from twinloop.history import Query, check_sink, load_records, sink_in_file, sink_reader
from twinloop.results import AnySink
from twinloop.state import reconstruct_state

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoResult:
    """Everything the demo produced, for the report and the tests."""

    out: Path
    line: Line
    truth: dict[str, Any]
    speed: float
    started: datetime
    ended: datetime
    calibrated_path: Path
    calibration: list[StationCalibration]
    validation: dict[str, Any]
    experiment: ExperimentResult
    prior_kpis: dict[str, Any]
    # the forecast from the window's middle, with the state it started from and what the line did
    midway: dict[str, Any] = field(default_factory=dict)
    connector: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


class EmbeddedBroker:
    """An MQTT broker inside this process (amqtt), on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from amqtt.broker import Broker

        with warnings.catch_warnings():  # amqtt announces a future change of its optional dependencies
            warnings.simplefilter("ignore", DeprecationWarning)
            self._broker = Broker(
                {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}}},
                loop=asyncio.get_running_loop(),
            )
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()


def connector_config(out: Path, opcua: str, mqtt: str, sink: AnySink | None, protocol: str = "5") -> Any:
    """The connector settings of the demo: both sources into the embedded historian (or `sink`).

    `sink` goes in as the model read from `--sink-config`, not as a dump of it: a dump would
    mask its password or token (`**********`), and the connectors would log in with that.
    """
    historian = {"type": "embedded", "path": str(out / "historian.duckdb"), "flush_interval": "200ms"}
    data: dict[str, Any] = {
        "name": "demo",
        "sink": historian if sink is None else sink,
        "spool": {"path": str(out / "spool")},
        "opcua": [
            {
                "endpoint": opcua,
                "nodes": ["Objects/*/*/*"],
                "sampling_interval": "50ms",
                "queue_size": 100,
                "security_policy": "None",
                "security_mode": "None",
            }
        ],
        "mqtt": [
            {
                "url": mqtt,
                "client_id": "fabbrica-demo",
                "protocol": protocol,
                "topics": [{"filter": "factory/+/+/+", "format": "json"}],
            }
        ],
    }
    return config_from_dict(data, "demo", {}, out)


async def stream_line(
    line: Line,
    out: Path,
    *,
    speed: float,
    hours: float,
    mqtt_url: str | None,
    sink: AnySink | None,
    seed: int,
    phase: Any = None,
) -> tuple[dict[str, Any], datetime, datetime, dict[str, Any]]:
    """Serve the line for `hours` of line time while the connectors record it; return the truth."""
    broker = None
    if mqtt_url is None:
        broker = EmbeddedBroker()
        await broker.start()
        mqtt_url = broker.url
    opcua = f"opc.tcp://127.0.0.1:{free_port()}"
    hardware = HardwareConfig.model_validate(
        {
            "speed": speed,
            "opcua": {"endpoint": opcua, "security": {"policies": ["None"], "pki_dir": str(out / "pki")}},
            "mqtt": {"url": mqtt_url},
        }
    )
    # the embedded broker (amqtt) speaks MQTT 3.1.1
    loaded = connector_config(out, opcua, mqtt_url, sink, protocol="3.1.1" if broker else "5")
    stop_connector = asyncio.Event()
    connector_task: asyncio.Task[Any] | None = None

    served_line: ServedLine | None = None
    mqtt_sources: list[Any] = []

    def ready(served: ServedLine) -> None:
        nonlocal connector_task, served_line
        served_line = served
        connector_task = asyncio.create_task(
            run_connector(
                loaded,
                stop_connector,
                on_sources=lambda runners: mqtt_sources.extend(
                    runner for runner in runners if hasattr(runner, "messages")
                ),
            )
        )
        if phase is not None:
            phase(served)

    pipeline = None

    async def finished() -> None:
        """The line has stopped: let the connector take the last values, then stop it, before the
        PLCs and the broker go away (so that it does not see them vanish)."""
        nonlocal pipeline
        if served_line is not None and served_line.sensors is not None:
            await _until_received(served_line.sensors, mqtt_sources)
        await asyncio.sleep(1.0)  # the OPC UA subscriptions' last notifications reach the connector
        stop_connector.set()
        if connector_task is not None:
            pipeline = await connector_task

    started = datetime.now(UTC)
    try:
        truth = await serve(
            line,
            hardware,
            seed=seed,
            duration=hours * 3600 / speed,
            on_ready=ready,
            on_finished=finished,
            handle_signals=False,
        )
    finally:
        stop_connector.set()
        if connector_task is not None and pipeline is None:
            pipeline = await connector_task
        if broker is not None:
            await broker.stop()
    ended = datetime.now(UTC)
    health = dataclasses.asdict(pipeline.health) if pipeline is not None else {}
    return truth, started, ended, health


async def _until_received(
    sensors: SensorPublisher, sources: list[Any], *, quiet: float = 1.5, timeout: float = 60.0
) -> None:
    """Wait until the connector's MQTT sources have taken in what the line's sensors published: on a
    loaded machine the broker (in this process) can deliver the last seconds' part events well after
    the line stops, and a window cut short of them would make the recorded working time too long
    for its parts (the speed calibration infers from both). Done when every published message has
    arrived, or when none has arrived for `quiet` seconds (messages published before the connector
    subscribed never come), at the latest after `timeout`."""
    published = sum(topic["published"] for topic in sensors.summary()["topics"].values())
    deadline = time.monotonic() + timeout
    received = sum(source.messages for source in sources)
    last_change = time.monotonic()
    while received < published and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now_received = sum(source.messages for source in sources)
        if now_received != received:
            received, last_change = now_received, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
    logger.info("the connector took in %d of the %d MQTT messages the line published", received, published)


def what_if(calibrated: Path, line: Line, kpis: dict[str, Any], out: Path, hours: float) -> ExperimentResult:
    """A what-if study on the calibrated twin: more capacity at the bottleneck, more buffer after it."""
    names = [station.name for station in line.stations]
    bottleneck = kpis["bottleneck"]
    index = names.index(bottleneck)
    buffered = names[index + 1] if index + 1 < len(names) else names[max(index, 1)]
    current = line.station(buffered).buffer
    levels = [current if current is not None else 4, (current or 4) + 4]
    spec = {
        "name": f"what-if at {bottleneck}",
        "line": str(calibrated.resolve()),
        "factors": {f"stations.{bottleneck}.capacity": [1, 2], f"stations.{buffered}.buffer": levels},
        "design": {"type": "full_factorial"},
        "replications": 5,
        "horizon": f"{hours + 1}h",
        "warmup": "1h",
        "seed": 11,
        "kpis": ["throughput_per_hour", "lead_time_mean_s", "wip_mean"],
    }
    (out / "what-if.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    experiment = Experiment.from_yaml(out / "what-if.yaml")
    return experiment.run(workers=1, out=out / "experiment")


# the forecast from the middle of the window: replications of the calibrated twin, instants of its fan
MIDWAY_REPLICATIONS = 100
MIDWAY_POINTS = 20
MIDWAY_SEED = 101


def forecast_midway(
    read: Query, line: Line, calibrated: Line, first: datetime, last: datetime, speed: float
) -> dict[str, Any]:
    """The line's state at the middle of the recorded window [first, last], rebuilt from the
    records, the calibrated twin's forecast from it to the window's end, and what the line did.

    The forecast counts good parts out of the last station after the middle (`parts_out`, and
    at `MIDWAY_POINTS` instants its `path`: the fan); `actual` counts the same from the last
    station's recorded `PartsProduced` (its PLC counter: every change is recorded, with its
    source timestamp). Times in the result are line seconds after the middle.
    """
    window = (last - first).total_seconds() * speed
    middle = window / 2
    at = first + timedelta(seconds=middle / speed)
    state = reconstruct_state(read, line, at, speed=speed)
    horizon = window - middle
    instants = [horizon * (k + 1) / MIDWAY_POINTS for k in range(MIDWAY_POINTS)]
    result = forecast(
        calibrated,
        state,
        horizon=horizon,
        replications=MIDWAY_REPLICATIONS,
        seed=MIDWAY_SEED,
        source="the state at the middle of the window",
        path=instants,
    )
    exits = _exits(read, line, at, last, state.produced(line), speed)
    parts = result["parts_out"]
    return {
        "at": at.isoformat().replace("+00:00", "Z"),
        "at_s": middle,
        "horizon_s": horizon,
        "state": state.to_json(),
        "forecast": result,
        "actual": {
            "parts_out": len(exits),
            "path": [{"t_s": t, "parts_out": sum(1 for x in exits if x <= t)} for t in instants],
            "exits_s": [round(t, 3) for t in exits],
        },
        "inside_p10_p90": parts["p10"] <= len(exits) <= parts["p90"],
    }


def _exits(read: Query, line: Line, at: datetime, last: datetime, produced: int, speed: float) -> list[float]:
    """Line seconds after `at` of each good part the last station made up to `last` (a counter
    that goes up by k is k parts), from its recorded `PartsProduced`, `produced` at `at`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ns = lambda t: (t - epoch) // timedelta(microseconds=1) * 1000  # noqa: E731
    rows = read("machine", ns(at) + 1, ns(last) + 1)
    if rows.empty or "PartsProduced" not in rows:
        return []
    name = line.stations[-1].name
    own = rows[(rows["station"] == name) & rows["PartsProduced"].notna()].sort_values("time")
    if "line" in own:
        own = own[own["line"] == line.name]
    exits: list[float] = []
    for instant, count in zip(own["time"], own["PartsProduced"], strict=True):
        after = (instant.to_pydatetime() - at).total_seconds() * speed
        exits += [after] * max(0, int(count) - produced)
        produced = max(produced, int(count))
    return exits


def run_demo(
    line_path: Path,
    out: Path,
    *,
    speed: float,
    hours: float,
    seed: int,
    mqtt_url: str | None = None,
    sink_config: Path | None = None,
    progress: Any = None,
) -> DemoResult:
    """The whole loop; `progress(phase, detail)` is told when each phase starts."""
    tell = progress or (lambda phase, detail="": None)
    out = out.resolve()  # the connector resolves relative sink paths against its own base
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("historian.duckdb", "historian.duckdb.wal"):
        with contextlib.suppress(FileNotFoundError):
            (out / stale).unlink()
    prior_data = read_yaml(line_path)
    line = line_from_dict(prior_data, str(line_path))
    sink = None
    if sink_config is not None:  # read and tried before the line runs, so that a bad one fails at once
        sink = sink_in_file(sink_config, "--sink-config")
        check_sink(sink, f"--sink-config: {sink_config}")
    prior_kpis = simulate(line, seed=seed).kpis
    tell("line", f"{hours:g} h of line time at speed {speed:g} ({hours * 3600 / speed:.0f} s)")
    truth, started, ended, health = asyncio.run(
        stream_line(line, out, speed=speed, hours=hours, mqtt_url=mqtt_url, sink=sink, seed=seed)
    )
    (out / "truth.json").write_text(json.dumps(truth, indent=1, default=str))
    # the line's own clock, mapped to wall time, bounds the recorded window
    started = datetime.fromisoformat(truth["start"].replace("Z", "+00:00"))
    ended = started + timedelta(seconds=truth["simulated_s"] / speed)
    tell("calibrate", "fitting cycle times, breakdowns, set-ups and scrap")
    source = out / "historian.duckdb" if sink_config is None else sink_config
    recorded = EmbeddedSink(type="embedded", path=str(source)) if sink is None else sink
    read = sink_reader(recorded, f"--sink-config: {source}" if sink else str(source))
    records, window, _, first, last = load_records(read, line, started, ended, speed)
    calibrated_path = out / "calibrated.yaml"
    calibration, _ = write_calibration(
        prior_data, records, window, calibrated_path, str(source), first, last, speed
    )
    calibrated = load_line(calibrated_path)
    tell("validate", "running the calibrated twin over the recorded window after the line's warm-up")
    # the line started empty: compare from the end of its warm-up on, as the twin does
    settled = first + timedelta(seconds=calibrated.warmup / speed)
    records_after, window_after, _, _, _ = load_records(read, line, settled, last, speed)
    validation = validate(calibrated, records_after, window_after, replications=10)
    tell("experiment", "what-if study on the calibrated twin")
    calibrated_kpis = simulate(calibrated, seed=seed).kpis
    experiment = what_if(calibrated_path, calibrated, calibrated_kpis, out, hours)
    tell("forecast", "rebuilding the state at the window's middle and forecasting the rest")
    midway = forecast_midway(read, line, calibrated, first, last, speed)
    (out / "forecast-midway.json").write_text(json.dumps(midway, indent=1))
    result = DemoResult(
        out=out,
        line=line,
        truth=truth,
        speed=speed,
        started=first,
        ended=last,
        calibrated_path=calibrated_path,
        calibration=calibration,
        validation=validation,
        experiment=experiment,
        prior_kpis=prior_kpis,
        midway=midway,
        connector=health,
    )
    tell("report", "writing report.html")
    from twinloop.demo_report import write_report

    result.report = write_report(result, records_after, window_after)
    return result

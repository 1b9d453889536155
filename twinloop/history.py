"""Reading what a line recorded, from the embedded historian or InfluxDB, into the twin's records.

SOURCE, as given to `fabbrica twin calibrate/validate --source`:
- `historian.duckdb`: the embedded historian file;
- `http://HOST:PORT/DATABASE`: InfluxDB 1.x (user and password from INFLUX_USERNAME/INFLUX_PASSWORD);
- `connector.yaml`: the `sink:` section of a connector configuration, or of a file that holds
  only a `sink:` (influxdb1, influxdb2 or embedded), with its `${ENV}` substitution, so the twin
  reads where the connector writes. User and password (1.x) or token (2.x/3.x) travel in the
  Authorization header, never in the URL.

The simulated line stamps its values on a wall clock running `speed` times slower than its
simulated clock; the records are put back on the line's own time base (seconds) with the
speed given or, by default, inferred from the ratio of recorded working time to recorded
cycle times.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from connectors.sinks.base import QueryError, SinkReader
from connectors.sinks.config import EmbeddedSink, SinkSettings
from connectors.sinks.registry import open_reader
from foundation.errors import InputError
from twin.calibration.records import StationRecord
from twin.line import Line
from twin.station import STATE_NAMES

if TYPE_CHECKING:
    from twinloop.results import AnySink

Query = Callable[[str, int, int], pd.DataFrame]
ENERGY_SENSOR = "energy"  # the sensor tag of a station's energy meter (kWh)


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO-8601 instant (naive means UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option}: not an ISO-8601 time: {text!r} (e.g. 2026-11-25T08:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SourceError(InputError):
    """The recorded data cannot be read: the source is unreachable, refused us or failed the query."""


def open_source(source: str) -> Query:
    """A function (measurement, start_ns, end_ns) -> DataFrame for SOURCE."""
    if source.startswith(("http://", "https://")):
        parsed = urlparse(source)
        database = parsed.path.strip("/")
        if not database:
            raise InputError(
                f"--source: {source}: give the database as the URL's path, e.g. http://host:8086/plant"
            )
        from connectors.sinks.influxql import InfluxQLReader, authorization

        base = f"{parsed.scheme}://{parsed.netloc}"
        auth = authorization(os.environ.get("INFLUX_USERNAME"), os.environ.get("INFLUX_PASSWORD"))
        return _reading(InfluxQLReader(base, database, auth), f"--source: {source}")
    path = Path(source)
    if not path.exists():
        raise InputError(f"--source: {source}: no such file")
    if path.suffix in (".yaml", ".yml"):
        return _from_sink_file(path)
    return _reading(open_reader(EmbeddedSink(type="embedded", path=str(path))), f"--source: {source}")


def _reading(reader: SinkReader, label: str) -> Query:
    """`reader` as a Query; `label` starts each error."""

    def read(measurement: str, start: int, end: int) -> pd.DataFrame:
        try:
            return asyncio.run(reader.query(measurement, start, end))
        except QueryError as exc:
            raise SourceError(f"{label}: cannot read {measurement!r}: {exc}") from None

    return read


def _from_sink_file(path: Path) -> Query:
    """Where the `sink:` section of `path` (a connector config, or a file with only `sink:`) writes."""
    return sink_reader(sink_in_file(path, "--source"), f"--source: {path}")


def sink_in_file(path: Path, option: str) -> AnySink:
    """The `sink:` of a connector config or of a file with only `sink:`, as a model (secrets kept
    as secrets), relative paths made absolute against the file's folder."""
    from twinloop.results import sink_from_file

    return sink_from_file(path, option=option)[0]


def sink_reader(sink: AnySink, label: str) -> Query:
    """Reads what the connectors wrote to `sink`; `label` starts every error message."""
    return _reading(open_reader(sink), label)


def check_sink(sink: AnySink, label: str) -> None:
    """Before a long run: SourceError at once if the sink is unreachable or refuses its
    credentials (the connectors would only spool, and the calibration fail at the end)."""
    try:
        asyncio.run(open_reader(sink).check())
    except QueryError as exc:
        raise SourceError(f"{label}: {exc}") from None


def _ns(value: datetime) -> int:
    return int(value.timestamp() * 1e9)


def load_records(
    read: Query, line: Line, start: datetime | None, end: datetime | None, speed: float | None
) -> tuple[dict[str, StationRecord], float, float, datetime, datetime]:
    """Station records of `line` between start and end, on the line's time base.

    Returns (records, window in line seconds, speed used, start, end).
    """
    lo = _ns(start) if start else 0
    hi = _ns(end) if end else 2**62
    machine = read("machine", lo, hi)
    parts = read("part", lo, hi)
    if machine.empty and parts.empty:
        raise InputError("--source: no `machine` or `part` data in the window")
    line_rows = lambda frame: frame[frame["line"] == line.name] if "line" in frame else frame  # noqa: E731
    machine, parts = line_rows(machine), line_rows(parts)
    meters = _energy_rows(line_rows(read("sensor", lo, hi)))
    times = pd.concat([machine["time"], parts["time"]]) if not parts.empty else machine["time"]
    first = start or times.min().to_pydatetime()
    last = end or times.max().to_pydatetime()
    origin = pd.Timestamp(first)
    records: dict[str, StationRecord] = {}
    for station in line.stations:
        record = StationRecord(station.name)
        if "State" in machine:
            record.state_times, record.states = _state_history(machine, station.name, "State", origin)
        # a station with parallel machines: each machine's own state (MachineNState on its PLC)
        for k in range(1, station.capacity + 1 if station.capacity > 1 else 1):
            if f"Machine{k}State" not in machine:
                record.machines = []
                break
            history = StationRecord(f"{station.name}[{k}]")
            history.state_times, history.states = _state_history(
                machine, station.name, f"Machine{k}State", origin
            )
            record.machines.append(history)
        if record.machines and not all(history.states for history in record.machines):
            record.machines = []
        if "Occupancy" in machine:
            rows = machine[(machine.get("station") == station.name) & machine["Occupancy"].notna()]
            record.occupancy_times = ((rows["time"] - origin).dt.total_seconds()).tolist()
            record.occupancy = rows["Occupancy"].astype(float).tolist()
        if "OccupancySeconds" in machine:
            rows = machine[(machine.get("station") == station.name) & machine["OccupancySeconds"].notna()]
            rows = rows.sort_values("time")
            record.occupancy_seconds_times = ((rows["time"] - origin).dt.total_seconds()).tolist()
            record.occupancy_seconds = rows["OccupancySeconds"].astype(float).tolist()
        if "Power" in machine:
            record.power_times, record.power_kw = _values(machine, station.name, "Power", origin)
        if not meters.empty:
            record.energy_times, record.energy_kwh = _values(meters, station.name, "value", origin)
        if station is line.stations[0] and "PartsReleased" in machine:
            record.release_times = _counted_events(machine, station.name, "PartsReleased", origin)
        if not parts.empty and "station" in parts:
            rows = parts[parts["station"] == station.name]
            record.part_times = ((rows["time"] - origin).dt.total_seconds()).tolist()
            record.cycle_times = rows["cycle_time_s"].astype(float).tolist()
            record.scrapped = [bool(v) for v in rows["scrapped"]]
            record.products = [str(v) for v in rows["product"]] if "product" in rows else []
            _routing(record, rows)
        records[station.name] = record
    wall_window = (pd.Timestamp(last) - origin).total_seconds()
    if speed is None:
        speed = infer_speed(records, wall_window)
    for record in records.values():
        record.state_times = [t * speed for t in record.state_times]
        record.part_times = [t * speed for t in record.part_times]
        for history in record.machines:
            history.state_times = [t * speed for t in history.state_times]
        record.release_times = [t * speed for t in record.release_times]
        record.occupancy_times = [t * speed for t in record.occupancy_times]
        record.occupancy_seconds_times = [t * speed for t in record.occupancy_seconds_times]
        record.power_times = [t * speed for t in record.power_times]
        record.energy_times = [t * speed for t in record.energy_times]
    return records, wall_window * speed, speed, first, last


def _routing(record: StationRecord, rows: pd.DataFrame) -> None:
    """Where each part came from and went (`from`, `to`, `reworked` of the part events), when every
    event of the station has them (an event of a scrapped part has no `to`)."""
    if "from" not in rows or "to" not in rows or rows.empty or rows["from"].isna().any():
        return
    record.came_from = [str(v) for v in rows["from"]]
    record.goes_to = [None if pd.isna(v) else str(v) for v in rows["to"]]
    reworked = rows["reworked"] if "reworked" in rows else pd.Series(False, index=rows.index)
    record.reworked = [False if pd.isna(v) else bool(v) for v in reworked]


def _energy_rows(sensors: pd.DataFrame) -> pd.DataFrame:
    """The readings of the stations' energy meters among the sensor values (tag `sensor=energy`,
    the hardware's MQTT topic `<prefix>/<line>/<station>/energy`, in kWh)."""
    if sensors.empty or "sensor" not in sensors or "value" not in sensors:
        return pd.DataFrame()
    return sensors[sensors["sensor"] == ENERGY_SENSOR]


def _values(
    frame: pd.DataFrame, station: str, field: str, origin: pd.Timestamp
) -> tuple[list[float], list[float]]:
    """(seconds from origin, float values) of one numeric field of one station, in time order."""
    rows = frame[(frame.get("station") == station) & frame[field].notna()].sort_values("time", kind="stable")
    return ((rows["time"] - origin).dt.total_seconds()).tolist(), rows[field].astype(float).tolist()


def _state_history(
    machine: pd.DataFrame, station: str, field: str, origin: pd.Timestamp
) -> tuple[list[float], list[str]]:
    """(seconds from origin, state names) of one state variable of one station."""
    rows = machine[(machine.get("station") == station) & machine[field].notna()]
    times = ((rows["time"] - origin).dt.total_seconds()).tolist()
    return times, [STATE_NAMES[int(code)] for code in rows[field]]


def _counted_events(machine: pd.DataFrame, station: str, field: str, origin: pd.Timestamp) -> list[float]:
    """Seconds from origin of each event a monotonic counter counted (a jump by k is k events)."""
    rows = machine[(machine.get("station") == station) & machine[field].notna()].sort_values("time")
    times = ((rows["time"] - origin).dt.total_seconds()).to_numpy()
    counts = rows[field].astype(float).to_numpy()
    steps = np.diff(counts, prepend=counts[0] if len(counts) else 0.0)
    steps = np.where(steps < 0, counts, steps)  # a counter reset (PLC restart) starts again from 0
    return np.repeat(times, np.maximum(steps, 0).astype(int)).tolist()


def infer_speed(records: dict[str, StationRecord], wall_window: float) -> float:
    """Simulated seconds per wall second: recorded cycle times over recorded working time."""
    ratios = []
    for record in records.values():
        working = sum(end - s for state, s, end in record.intervals(wall_window) if state == "working")
        if working > 0 and len(record.cycle_times) >= 10:
            ratios.append(sum(record.cycle_times) / working)
    if not ratios:
        return 1.0
    speed = float(np.median(ratios))
    # a real line runs at speed 1, a simulated one at a round speed-up: snap within 2 %
    # to the nearest 1, 1.2, 1.5, 2, 2.4, 2.5, 3, 4, 5, 6 or 8 times a power of ten
    decade = 10 ** math.floor(math.log10(speed))
    for mantissa in (1, 1.2, 1.5, 2, 2.4, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = mantissa * decade
        if abs(speed / candidate - 1) < 0.02:
            return float(round(candidate, 6))
    return speed


def source_summary(records: dict[str, StationRecord]) -> dict[str, Any]:
    return {name: {"states": len(r.states), "parts": len(r.cycle_times)} for name, r in records.items()}


class ReadsHistory:
    """A read configuration that names its file (`path`) and where its history comes from
    (`source`, `source_label`): the live twin's and the advice's."""

    path: Path
    source: str | SinkSettings
    source_label: str

    @property
    def base(self) -> Path:
        """The config file's folder: relative paths (certificates, pki) are taken against it."""
        return self.path.resolve().parent

    def open_query(self) -> Any:
        """The history reader (`twinloop.history.Query`); opening reads nothing yet."""
        if isinstance(self.source, str):
            return open_source(self.source)
        return sink_reader(self.source, self.source_label)

"""The line's state at an instant, rebuilt from what the connectors recorded of its PLCs.

A live twin starts from where the line is (`twin.state`, format `fabbrica-state/1`). The
PLCs publish what that state needs on every change (docs/live-twin.md, "What a real line's
PLC must provide"), and `reconstruct_state` reads it back from the historian or InfluxDB:
per station the last value at or before `at` of

- `State` (a station with one machine) or `Machine<k>State` (several): each machine's
  state; `elapsed_s` is `at` minus the later of the source timestamps of that state's last
  change and of the machine's `PartsStarted` / `Machine<k>PartsStarted` last change (a new
  part restarts the cycle while the state stays `working`), in line seconds;
- `Product` / `Machine<k>Product`: the product of the part on the machine ("" when none);
- `BufferLevel`: the parts waiting in front of the station (without it, `Occupancy` minus
  the parts on the machines, sampled: a warning says so);
- `PartsProduced` (the state's `produced`) and, at the first station, `PartsReleased`;
- on a line that is a network (docs/networks.md): an assembly's `BufferLevel.<UPSTREAM>` per
  input (`buffers`), `ReworkLevel` (`returns`) and `TransportLevel` (`transport`). A transport's
  PLC counts its parts, it does not time them: each part's elapsed travel is rebuilt from the
  changes of that count, taking the parts to leave in the order they came on (`elapsed_s`; the
  twin draws the rest of the travel given it).

Only a window before `at` is read (15 minutes of recorded time, widened to 4 hours, a day,
a week, then everything, until every station has shown its state, buffer and count), so a
live service can call it every minute. The simulated line stamps its values on a clock
`speed` times slower than the line's own; elapsed times are put back on the line's time
base with the speed given, or else one inferred from the same PLC values: the cycle times
(`LastCycleTime`) of the parts finished in the window over the machines' recorded working
time (`twinloop.history.infer_speed` snaps it; a real line has speed 1). Only the `machine`
measurement is read.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from foundation.errors import InputError
from twin.calibration.records import StationRecord
from twin.line import Line
from twin.network_state import raw_material
from twin.state import FORMAT, START_STATES, LineState, MachineState, StationState, TransportPart
from twin.station import BLOCKED, OFF, PLANNED_STOP, STATE_NAMES, STOPPED, WAITING_REPAIR, WORKING
from twin.topology import Topology
from twinloop.history import Query, infer_speed

logger = logging.getLogger(__name__)

# recorded seconds read before `at`, widened in turn until everything needed is in the window
LOOKBACK_S: tuple[float | None, ...] = (900.0, 4 * 3600.0, 86400.0, 7 * 86400.0, None)
# parts at one station that a window needs before the speed is inferred from it
SPEED_PARTS = 30
BUFFER_LEVEL = "BufferLevel"
PRODUCED = "PartsProduced"
RELEASED = "PartsReleased"
REWORK_LEVEL = "ReworkLevel"  # a network line: parts sent back to the station, waiting
TRANSPORT_LEVEL = "TransportLevel"  # a network line: parts on the transport into the station


def input_level(upstream: str) -> str:
    """The variable of an assembly's buffer for the parts from station `upstream`."""
    return f"{BUFFER_LEVEL}.{upstream}"


def machine_variable(name: str, machine_index: int, machines: int) -> str:
    """A per-machine PLC variable: `name` on a station with one machine, `Machine<k><name>` with several."""
    return name if machines == 1 else f"Machine{machine_index + 1}{name}"


def state_variable(machine_index: int, machines: int) -> str:
    """`State` on a station with one machine, `Machine<k>State` with several."""
    return "State" if machines == 1 else f"Machine{machine_index + 1}State"


@dataclass(frozen=True)
class _Last:
    """A variable's last value at or before `at`, and when that value was first shown (a value
    stored again unchanged, by a restarted PLC for example, does not restart its time)."""

    value: Any
    since: pd.Timestamp


def reconstruct_state(query: Query, line: Line, at: datetime, *, speed: float | None = None) -> LineState:
    """The state of `line` at `at` from the recorded PLC values that `query` reads.

    `query` is what `twinloop.history.open_source(SOURCE)` returns; `speed` is the line's
    seconds per recorded second (None: inferred). Nothing recorded at or before `at`, a
    line or station the data does not know, or a station without its machines' states is
    a one-line InputError.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    when = at.isoformat().replace("+00:00", "Z")
    end = _ns(at) + 1  # a value stamped at `at` is shown at `at`
    raw = rows = pd.DataFrame()
    start = 0
    for lookback in LOOKBACK_S:
        start = 0 if lookback is None else end - int(lookback * 1e9)
        raw = query("machine", start, end)
        rows = _of_line(raw, line)
        if _complete(rows, line) and (speed is not None or _enough_parts(rows)):
            break
    logger.debug("state at %s from %d PLC rows since %s", when, len(rows), _utc(start))
    _check_data(raw, rows, line, when)
    if speed is None:
        speed = _infer_speed(rows, line, at)
    stations: dict[str, StationState] = {}
    released = None
    dropped: set[str] = set()
    topology = Topology(line) if line.is_network else None
    for index, station in enumerate(line.stations):
        own = rows[rows["station"] == station.name] if "station" in rows else rows.iloc[0:0]
        machines = []
        for k in range(station.capacity):
            state = _last(own, state_variable(k, station.capacity))
            if state is None:
                raise InputError(
                    f"--source: no {state_variable(k, station.capacity)} of station {station.name!r} "
                    f"at or before {when} (a station with {station.capacity} machine(s) must publish "
                    "it: docs/live-twin.md)"
                )
            machines.append(_machine(own, station.capacity, k, state, at, speed, line, dropped))
        if topology is None:
            places: dict[str, Any] = {"buffer": 0}
            if station.buffer != 0 and not (index == 0 and line.release == "saturated"):
                places["buffer"] = _buffer(own, station.name, machines, when)
        else:
            places = _network_places(rows, line, topology, index, at, speed, when)
        produced = _last(own, PRODUCED)
        stations[station.name] = StationState(
            **places,
            machines=machines,
            produced=None if produced is None else int(produced.value),
        )
        if index == 0 and (count := _last(own, RELEASED)) is not None:
            released = int(count.value)
    if dropped:
        logger.warning(
            "products %s are not in the line file (products: %s): the twin draws those parts' products",
            ", ".join(sorted(dropped)),
            ", ".join(line.product_mix),
        )
    return LineState(format=FORMAT, time=at, stations=stations, released=released)


def _machine(
    rows: pd.DataFrame,
    machines: int,
    k: int,
    state: _Last,
    at: datetime,
    speed: float,
    line: Line,
    dropped: set[str],
) -> MachineState:
    """One machine from its state, its last loaded part (`PartsStarted`) and that part's product."""
    code = int(state.value)
    if not 0 <= code < len(STATE_NAMES):
        raise InputError(f"--source: {state_variable(k, machines)}: unknown state code {code}")
    if code == PLANNED_STOP:  # the line stands: the machine is as it was when the stop began
        stop = state.since
        before = _last(rows[rows["time"] < stop], state_variable(k, machines))
        if before is None:
            return MachineState(state="starved")
        return _machine(
            rows[rows["time"] < stop], machines, k, before, stop.to_pydatetime(), speed, line, dropped
        )
    since = state.since
    started = _last(rows, machine_variable("PartsStarted", k, machines))
    if started is not None and started.since > since:
        since = started.since
    if code == STOPPED:  # stopped by an operator before loading its next part: empty, as in the twin
        return MachineState(state="starved")
    if code == WAITING_REPAIR:  # broken, no technician yet: down, its repair not begun
        product = _last(rows, machine_variable("Product", k, machines))
        held = product.value if product is not None and product.value in line.product_mix else None
        return MachineState(state="down", product=held)
    name = STATE_NAMES[code]
    assert name in START_STATES
    elapsed = max(0.0, (at - since.to_pydatetime()).total_seconds() * speed)
    if name == "off":
        return MachineState(state="off", elapsed_s=elapsed)
    restart = None
    if name == "setup":  # a set-up straight after the machine was off is its restart
        earlier = _last(rows[rows["time"] < state.since], state_variable(k, machines))
        restart = True if earlier is not None and int(earlier.value) == OFF else None
    product = None
    shown = _last(rows, machine_variable("Product", k, machines))
    if name != "starved" and shown is not None and isinstance(shown.value, str) and shown.value:
        if shown.value in line.product_mix:
            product = shown.value
        else:
            dropped.add(shown.value)
    # (a service between two parts shows no product: it holds none; one that interrupted a part holds it)
    return MachineState(state=name, elapsed_s=elapsed, product=product, restart=restart)  # type: ignore[arg-type]


def _buffer(rows: pd.DataFrame, station: str, machines: list[MachineState], when: str) -> int:
    """`BufferLevel`; without it, the sampled `Occupancy` less the parts on the machines."""
    level = _last(rows, BUFFER_LEVEL)
    if level is not None:
        return int(level.value)
    occupancy = _last(rows, "Occupancy")
    if occupancy is None:
        raise InputError(
            f"--source: no {BUFFER_LEVEL} (nor Occupancy) of station {station!r} at or before {when} "
            "(docs/live-twin.md)"
        )
    logger.warning(
        "%s: no %s recorded; its buffer is Occupancy less the parts on its machines, as sampled at %s",
        station,
        BUFFER_LEVEL,
        occupancy.since.isoformat(),
    )
    held = sum(machine.state in ("working", "blocked", "down", "setup") for machine in machines)
    return max(0, int(occupancy.value) - held)


def _level_variables(line: Line, topology: Topology, index: int) -> list[str]:
    """The level variables a network line's station must publish: its buffers (an assembly's one
    per input; none for a hand-over, or raw material), rework queue and transport."""
    station = line.stations[index]
    names = []
    if station.buffer != 0 and topology.assembly[index]:
        names += [input_level(topology.names[source]) for source in topology.inputs[index]]
    elif station.buffer != 0 and not raw_material(line, topology, index):
        names.append(BUFFER_LEVEL)
    if index in topology.rework_to:
        names.append(REWORK_LEVEL)
    if station.transport is not None:
        names.append(TRANSPORT_LEVEL)
    return names


def _network_places(
    rows: pd.DataFrame, line: Line, topology: Topology, index: int, at: datetime, speed: float, when: str
) -> dict[str, Any]:
    """A network line's station: its buffer (an assembly's `buffers`), rework queue and transport."""
    name = line.stations[index].name
    own = rows[rows["station"] == name]
    levels = {}
    for variable in _level_variables(line, topology, index):
        level = _last(own, variable)
        if level is None:
            raise InputError(
                f"--source: no {variable} of station {name!r} at or before {when} (a network line's"
                " station must publish it: docs/live-twin.md)"
            )
        levels[variable] = int(level.value)
    places: dict[str, Any] = {}
    if topology.assembly[index]:
        places["buffers"] = {
            topology.names[source]: levels.get(input_level(topology.names[source]), 0)
            for source in topology.inputs[index]
        }
    else:
        places["buffer"] = levels.get(BUFFER_LEVEL, 0)
    if REWORK_LEVEL in levels:
        places["returns"] = levels[REWORK_LEVEL]
    if TRANSPORT_LEVEL in levels:
        unblocked = _unblocked(rows, line, _senders(line, topology, index))
        places_on = line.stations[index].transport.capacity  # type: ignore[union-attr]
        boarded = _boarded(own, unblocked, levels[TRANSPORT_LEVEL], places_on)
        places["transport"] = [
            TransportPart(elapsed_s=max(0.0, (at - since.to_pydatetime()).total_seconds() * speed))
            for since in boarded
        ]
    return places


def _senders(line: Line, topology: Topology, index: int) -> list[int]:
    """The stations whose parts travel on the transport into station `index` (not rework)."""
    senders = (
        set(topology.inputs[index]) if any(p not in topology.routes for p in line.product_mix) else set()
    )
    for route in topology.routes.values():
        senders |= {route[k - 1] for k in range(1, len(route)) if route[k] == index}
    return sorted(senders)


def _unblocked(rows: pd.DataFrame, line: Line, senders: list[int]) -> list[pd.Timestamp]:
    """The instants at which a machine of one of `senders` stopped being blocked."""
    found = []
    for index in senders:
        station = line.stations[index]
        own = rows[rows["station"] == station.name]
        for k in range(station.capacity):
            variable = state_variable(k, station.capacity)
            if variable not in own:
                continue
            shown = own[own[variable].notna()]
            codes = [int(code) for code in shown[variable]]
            times = list(shown["time"])
            found += [
                times[j] for j in range(1, len(codes)) if codes[j - 1] == BLOCKED and codes[j] != BLOCKED
            ]
    return sorted(pd.Timestamp(time) for time in found)


def _boarded(
    rows: pd.DataFrame, unblocked: list[pd.Timestamp], count: int, places: int
) -> list[pd.Timestamp]:
    """When each of the `count` parts on a transport came on, oldest first, from the changes of
    `TransportLevel` in the window, taking the parts to leave in the order they came on.

    A sender waiting for a place takes it at the instant a part leaves: the count does not
    change then, but the sender stops being blocked (`unblocked`), which is taken as one part off
    and one on when all the transport's `places` are taken. A part already on at the window's
    first value counts from that value's time (the window starts long before, see LOOKBACK_S).
    """
    shown = rows[rows[TRANSPORT_LEVEL].notna()]
    changes = {
        pd.Timestamp(time): int(value)
        for time, value in zip(shown["time"], shown[TRANSPORT_LEVEL], strict=True)
    }
    events = sorted(
        [*((time, level) for time, level in changes.items()), *((time, None) for time in unblocked)],
        key=lambda e: e[0],
    )
    on: deque[pd.Timestamp] = deque()
    for time, level in events:
        if level is None:  # a sender took a place: off and on at once, if no change says otherwise
            if time not in changes and len(on) == places:
                on.popleft()
                on.append(time)
            continue
        if level > len(on):
            on.extend([time] * (level - len(on)))
        else:
            for _ in range(len(on) - level):
                on.popleft()
    return list(on)[-count:] if count else []


def _complete(rows: pd.DataFrame, line: Line) -> bool:
    """Whether every station has shown its machines' states, its buffer and its count."""
    if rows.empty or "station" not in rows:
        return False
    topology = Topology(line) if line.is_network else None
    for index, station in enumerate(line.stations):
        own = rows[rows["station"] == station.name]
        needed = [state_variable(k, station.capacity) for k in range(station.capacity)] + [PRODUCED]
        if topology is not None:
            needed += _level_variables(line, topology, index)
        elif station.buffer != 0 and not (index == 0 and line.release == "saturated"):
            needed.append(BUFFER_LEVEL)
        if any(name not in own or not own[name].notna().any() for name in needed):
            return False
    return True


def _enough_parts(rows: pd.DataFrame) -> bool:
    """Whether some station finished enough parts in the window to infer the speed from."""
    if PRODUCED not in rows:
        return False
    counts = rows.loc[rows[PRODUCED].notna(), "station"].value_counts()
    return not counts.empty and int(counts.max()) > SPEED_PARTS


def _check_data(raw: pd.DataFrame, rows: pd.DataFrame, line: Line, when: str) -> None:
    """One line saying what is wrong when the data read (`raw`, of which `rows` are the line's)
    holds nothing of the line or of some of its stations."""
    if not rows.empty and "station" in rows:
        known = {str(name) for name in rows["station"].dropna().unique()}
        missing = [station.name for station in line.stations if station.name not in known]
        if missing:
            raise InputError(
                f"--source: no data of station(s) {', '.join(missing)} of line {line.name!r} at or "
                f"before {when} (stations in the data: {', '.join(sorted(known))})"
            )
        return
    if raw.empty:
        raise InputError(f"--at: nothing recorded at or before {when}")
    lines = sorted(set(raw["line"].dropna())) if "line" in raw else []
    raise InputError(
        f"--source: no data of line {line.name!r} at or before {when}"
        + (f" (lines in the data: {', '.join(lines)})" if lines else "")
    )


def _infer_speed(rows: pd.DataFrame, line: Line, at: datetime) -> float:
    """The line's seconds per recorded second, from the PLC values in the window read.

    Per station, between its first and its last finished part in the window (a change of
    `PartsProduced` or `PartsScrapped`), the parts' cycle times (`LastCycleTime` as each
    finished, in line seconds) over its machines' recorded working time: exact for a station
    with one machine, whose processing is all its working time. The stations' median, snapped
    to a round speed-up (`twinloop.history.infer_speed`); 1 (a real line) without parts.
    """
    records = {}
    for station in line.stations:
        own = rows[rows["station"] == station.name]
        finished = _finished(own)
        if len(finished) < 2:
            continue
        (begin, _, _), end = finished[0], finished[-1][0]
        working = 0.0
        for k in range(station.capacity):
            working += _working_seconds(own, state_variable(k, station.capacity), begin, end)
        cycles = [cycle for _, count, cycle in finished[1:] for _ in range(count)]
        records[station.name] = StationRecord(
            station.name, state_times=[0.0, working], states=["working", "starved"], cycle_times=cycles
        )
    speed = infer_speed(records, max((record.state_times[1] for record in records.values()), default=0.0))
    logger.info(
        "speed %g inferred from the recorded cycle and working times before %s", speed, at.isoformat()
    )
    return speed


def _finished(rows: pd.DataFrame) -> list[tuple[pd.Timestamp, int, float]]:
    """(when, how many, cycle time) of each change of the station's part counters, oldest first."""
    if PRODUCED not in rows or "LastCycleTime" not in rows:
        return []
    counters = [name for name in (PRODUCED, "PartsScrapped") if name in rows]
    shown = rows[rows[counters].notna().any(axis=1) | rows["LastCycleTime"].notna()]
    last: dict[str, float] = {}
    cycle = None
    out = []
    for time, *values, value in zip(
        shown["time"], *(shown[name] for name in counters), shown["LastCycleTime"], strict=True
    ):
        if pd.notna(value):
            cycle = float(value)
        count = 0
        for name, number in zip(counters, values, strict=True):
            if pd.notna(number):
                if name in last and number > last[name]:
                    count += int(number - last[name])
                last[name] = float(number)
        if count and cycle is not None:
            out.append((time, count, cycle))
    return out


def _working_seconds(rows: pd.DataFrame, field: str, begin: pd.Timestamp, end: pd.Timestamp) -> float:
    """Recorded seconds that `field` (a machine's state) showed working between `begin` and `end`."""
    if field not in rows:
        return 0.0
    shown = rows[rows[field].notna()]
    total = 0.0
    times = [*shown["time"], end]
    for code, since, until in zip(shown[field], times, times[1:], strict=False):
        lo, hi = max(since, begin), min(until, end)
        if int(code) == WORKING and hi > lo:
            total += (hi - lo).total_seconds()
    return total


def _of_line(frame: pd.DataFrame, line: Line) -> pd.DataFrame:
    """The rows of `line` that hold a variable read here (not the process signals, which are
    most of the rows), with those columns only, oldest first."""
    if frame.empty:
        return frame
    if "line" in frame:
        frame = frame[frame["line"] == line.name]
    read = {PRODUCED, "PartsScrapped", "LastCycleTime", BUFFER_LEVEL, "Occupancy", RELEASED}
    read |= {REWORK_LEVEL, TRANSPORT_LEVEL} | {input_level(station.name) for station in line.stations}
    for station in line.stations:
        for k in range(station.capacity):
            read |= {state_variable(k, station.capacity)}
            read |= {machine_variable(name, k, station.capacity) for name in ("Product", "PartsStarted")}
    fields = [column for column in frame.columns if column in read]
    frame = frame[[column for column in ("time", "line", "station") if column in frame] + fields]
    frame = frame[frame[fields].notna().any(axis=1)]
    return frame.sort_values("time", kind="stable")


def _last(rows: pd.DataFrame, field: str) -> _Last | None:
    """The last value of `field` in `rows` (oldest first), and the first row of its final run."""
    if field not in rows:
        return None
    column = rows[field]
    shown = np.flatnonzero(column.notna().to_numpy())
    if not len(shown):
        return None
    values = column.to_numpy()
    last = values[shown[-1]]
    first = len(shown) - 1
    while first > 0 and values[shown[first - 1]] == last:
        first -= 1
    return _Last(last, pd.Timestamp(rows["time"].iloc[shown[first]]))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def _utc(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)

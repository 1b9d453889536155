"""The ground truth of a served run: what the simulated line really did, written as JSON on exit.

Tests and fault-injection checks compare what reached the database with it. Per
station it holds the final counters, every value the PLC's `State` and other kept
variables took (`PartsProduced`, `LastCycleTime`, `BufferLevel`, `Product`,
`PartsStarted`, ...: all but the process signals, with the source timestamp the PLC
gave each), every finished part (as published on the events topic), every operator
command with its user, and per MQTT topic the messages the broker acknowledged (with the
hardware's `mqtt.truth_readings`, also every sensor sample handed to the broker). A line with
setpoints has `setpoints` (the initial values, the limits and every change, with its user) and
`advice` (every step of the approval of the twin's advice); `refused` holds every attempt to
change the line that the PLC refused, with its status code and reason. A line with a shift
calendar also has `calendar`: its origin, the planned time served and every planned stop. The format is
documented in docs/simulated-hardware.md; `FORMAT` names its version.

`truth_state` reads the line's state at any instant back from it (the live twin's
state file, `twin.state`), as the PLCs showed it.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulations.hardware.clock import ScaledClock
from simulations.hardware.runtime import LineRuntime
from simulations.hardware.sensors import iso_utc
from simulations.hardware.states import state_name
from twin.setpoints import initial
from twin.state import FORMAT as STATE_FORMAT
from twin.state import LineState, MachineState, StationState
from twin.station import PLANNED_STOP, STARVED, STATE_NAMES, STOPPED

FORMAT = "fabbrica-truth/1"
_MACHINE_STATE = re.compile(r"Machine[0-9]+State")


def truth_record(
    runtime: LineRuntime,
    clock: ScaledClock,
    *,
    opcua: dict[str, Any] | None = None,
    mqtt: dict[str, Any] | None = None,
    readings: dict[int, dict[str, list[tuple[str, float]]]] | None = None,
) -> dict[str, Any]:
    """The truth of the run so far, as plain data; `readings`: the sensor samples per station index."""
    epoch = clock.epoch
    now = runtime.now
    stations: dict[str, Any] = {}
    for station in runtime.stations:
        stations[station.name] = {
            "parts_produced": station.parts_produced,
            "parts_scrapped": station.parts_scrapped,
            "state": state_name(station.state),
            "states": [
                {"ts": iso_utc(epoch(t)), "t": t, "state": state, "name": state_name(state)}
                for t, state in station.states.entries
            ],
            "values": {
                variable: [{"ts": iso_utc(epoch(t)), "t": t, "value": value} for t, value in timeline.entries]
                for variable, timeline in station.values.items()
            },
            "parts": [{"ts": iso_utc(epoch(part["t"])), **part} for part in station.parts],
            "commands": [
                {"ts": iso_utc(epoch(t)), "t": t, "command": command, "user": user}
                for (t, command), user in zip(station.commands, station.command_users, strict=True)
            ],
        }
        if mqtt is not None:
            prefix = f"{mqtt['prefix'].rstrip('/')}/{runtime.line.name}/{station.name}/"
            stations[station.name]["messages"] = {
                topic.removeprefix(prefix): counts
                for topic, counts in mqtt["topics"].items()
                if topic.startswith(prefix)
            }
        if readings is not None:
            stations[station.name]["readings"] = {
                sensor: [{"ts": ts, "value": value} for ts, value in samples]
                for sensor, samples in readings[station.index].items()
            }
    record = {
        "format": FORMAT,
        "line": runtime.line.name,
        "seed": runtime.seed,
        "speed": clock.speed,
        "start": iso_utc(clock.start_epoch),
        "end": iso_utc(epoch(now)),
        "simulated_s": now,
        "lag": clock.lag.as_dict(),
        "opcua": opcua,
        "mqtt": mqtt,
        "stations": stations,
    }
    if runtime.setpoints:
        record["setpoints"] = {
            "initial": initial(runtime.line),
            "limits": {path: list(bounds) for path, bounds in runtime.limits.bounds.items()},
            "changes": [{"ts": iso_utc(epoch(change["t"])), **change} for change in runtime.setpoint_changes],
        }
        record["advice"] = [{"ts": iso_utc(epoch(event["t"])), **event} for event in runtime.approvals.events]
    record["refused"] = [{"ts": iso_utc(epoch(refusal["t"])), **refusal} for refusal in runtime.refusals]
    if runtime.planned_clock is not None:
        record["calendar"] = {
            "origin": runtime.planned_clock.origin.isoformat(),
            "planned_s": runtime.planned_clock.planned(now),
            "stops": [
                {
                    "ts_start": iso_utc(epoch(start)),
                    "t_start": start,
                    "ts_end": iso_utc(epoch(end)) if end <= now else None,
                    "t_end": end if end <= now else None,
                }
                for start, end in runtime.stops
            ],
        }
    return record


def write_truth(path: Path, record: dict[str, Any]) -> None:
    """Write `record` to `path` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)


def truth_state(record: dict[str, Any], t: float) -> LineState:
    """The line's state at simulated second `t` of a truth record, as its PLCs showed it then.

    Per station: `BufferLevel` (0 where the PLC has none), and per machine its state
    (`State`, or `Machine<k>State` on a station with several), the product of its part
    (`Product` / `Machine<k>Product`) and the time since it entered that state or loaded its
    part (the later change of the state and of `PartsStarted`); `produced` is `PartsProduced`,
    `released` the first station's `PartsReleased`. A stopped machine is starved, as in
    `LineModel.snapshot`. Values stamped at `t` count as shown.

    On a line with a shift calendar a machine is in the state it stood in when the planned stop
    began (the PLC shows `planned_stop` meanwhile, and the same state again after it), and its
    elapsed time is planned time: the planned stops in between do not count.
    """
    stops = [
        (stop["t_start"], math.inf if stop["t_end"] is None else stop["t_end"])
        for stop in (record.get("calendar") or {}).get("stops", [])
    ]
    stations: dict[str, StationState] = {}
    released = None
    for name, station in record["stations"].items():
        values = station["values"]
        count = sum(1 for variable in values if _MACHINE_STATE.fullmatch(variable))
        machines = []
        for k in range(max(count, 1)):
            states = values[f"Machine{k + 1}State"] if count else station["states"]
            prefix = f"Machine{k + 1}" if count else ""
            key = "value" if count else "state"
            code, since = _at(_across_stops(states, key) if stops else states, t, key)
            _, started = _at(values.get(f"{prefix}PartsStarted", []), t)
            product, _ = _at(values.get(f"{prefix}Product", []), t)
            if code == STOPPED:
                code, since = STARVED, t
            begun = max(since, started if started is not None else since)
            machines.append(
                MachineState(
                    state=STATE_NAMES[code],  # type: ignore[arg-type]
                    elapsed_s=t - begun - _stopped_between(stops, begun, t),
                    product=(product or None) if code != STARVED else None,
                )
            )
        level, _ = _at(values.get("BufferLevel", []), t)
        produced, _ = _at(values.get("PartsProduced", []), t)
        stations[name] = StationState(buffer=level or 0, machines=machines, produced=produced or 0)
        if "PartsReleased" in values and released is None:
            released, _ = _at(values["PartsReleased"], t)
    start = datetime.fromisoformat(record["start"].replace("Z", "+00:00")).astimezone(UTC)
    return LineState(
        format=STATE_FORMAT,
        time=start + timedelta(seconds=t / record["speed"]),
        stations=stations,
        released=released,
    )


def _across_stops(entries: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """A state timeline without its planned stops: a state that goes on after a stop goes on."""
    kept: list[dict[str, Any]] = []
    for entry in entries:
        if entry[key] == PLANNED_STOP or (kept and kept[-1][key] == entry[key]):
            continue
        kept.append(entry)
    return kept


def _stopped_between(stops: list[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of planned stops within [a, b]."""
    return sum(max(0.0, min(b, end) - max(a, start)) for start, end in stops)


def _at(entries: list[dict[str, Any]], t: float, key: str = "value") -> tuple[Any, Any]:
    """(value, simulated time) of the last entry stamped at or before `t`; (None, None) if none."""
    index = bisect.bisect_right([entry["t"] for entry in entries], t)
    if index == 0:
        return None, None
    entry = entries[index - 1]
    return entry[key], entry["t"]

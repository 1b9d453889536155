"""The ground truth of a served run: what the simulated line really did, written as JSON on exit.

Tests and fault-injection checks compare what reached the database with it. Per
station it holds the final counters, every value the PLC's `State`, `PartsProduced`,
`PartsScrapped` and `LastCycleTime` variables took (with the source timestamp the
PLC gave it), every finished part (as published on the events topic), every operator
command, and per MQTT topic the messages the broker acknowledged (with the hardware's
`mqtt.truth_readings`, also every sensor sample handed to the broker). The format is
documented in docs/simulated-hardware.md; `FORMAT` names its version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simulations.hardware.clock import ScaledClock
from simulations.hardware.runtime import LineRuntime
from simulations.hardware.sensors import iso_utc
from simulations.hardware.states import state_name

FORMAT = "fabbrica-truth/1"


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
    now = runtime.env.now
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
                {"ts": iso_utc(epoch(t)), "t": t, "command": command} for t, command in station.commands
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
    return {
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


def write_truth(path: Path, record: dict[str, Any]) -> None:
    """Write `record` to `path` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)

"""What a plant counts, on the simulated hardware (issue 18): the new machine states as OPC 40001-1
and PackML states, the shift calendar served on the calendar, and the energy meter reading the
line's power per state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import simpy
from asyncua import Client, ua

from simulations.hardware.config import HardwareConfig
from simulations.hardware.plc import STATION_VARIABLES
from simulations.hardware.runtime import TIME_COUNTERS, LineRuntime, StationRuntime
from simulations.hardware.serve import ServedLine, serve
from simulations.hardware.signals import SignalBank, station_generator
from simulations.hardware.states import (
    EXECUTING,
    MACHINERY_ITEM_STATE,
    MACHINERY_OPERATION_MODE,
    MODE_MAINTENANCE,
    NOT_AVAILABLE,
    OUT_OF_SERVICE,
    PACKML_IDLE,
    PACKML_STATE,
    PACKML_STOPPED,
    PACKML_SUSPENDED,
    PACKML_UNIT_MODE,
    STATION_PRIORITY,
    UNIT_MAINTENANCE,
    station_state,
)
from simulations.hardware.truth import truth_record, truth_state
from tests.hardware.conftest import FAST_LINE, Mosquitto, free_port
from twin.line import line_from_dict
from twin.station import (
    MAINTENANCE,
    OFF,
    PLANNED_STOP,
    REPORTED_STATES,
    STARVED,
    STATE_NAMES,
    WORKING,
)

NAMESPACE = "urn:fabbrica:pilot-line"
# a shift from 06:00 with a break from 06:10 to 06:20: line time 0 is 06:00, the stop is [600, 1200)
BREAK = (600.0, 1200.0)
CALENDAR = {
    "start": "2026-01-05T06:00",
    "shifts": [{"days": "mon-sun", "start": "06:00", "end": "22:00"}],
    "breaks": [{"start": "06:10", "end": "06:20"}],
}
POWER = {"working": 6.0, "idle": 1.5, "down": 0.4, "setup": 3.0, "off": 0.1}


def _line(**extra: Any) -> Any:
    return line_from_dict({**FAST_LINE, "calendar": CALENDAR, **extra})


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- the states ------------------------------------------------------------------------------------
def test_every_state_has_its_opc_40001_and_packml_states_and_a_counter() -> None:
    for table in (MACHINERY_ITEM_STATE, MACHINERY_OPERATION_MODE, PACKML_STATE, PACKML_UNIT_MODE):
        assert set(table) == set(range(len(STATE_NAMES)))
    assert sorted(STATION_PRIORITY) == list(range(len(STATE_NAMES)))
    # a planned stop is non-scheduled time: not available; PackML Idle, ready for the shift's Start
    assert MACHINERY_ITEM_STATE[PLANNED_STOP] == NOT_AVAILABLE and PACKML_STATE[PLANNED_STOP] == PACKML_IDLE
    # switched off to save energy: not available; PackML Suspended, waiting for a part as when starved
    assert MACHINERY_ITEM_STATE[OFF] == NOT_AVAILABLE and PACKML_STATE[OFF] == PACKML_SUSPENDED
    # preventive maintenance: out of service in the operation mode Maintenance; PackML Stopped in the
    # unit mode Maintenance
    assert MACHINERY_ITEM_STATE[MAINTENANCE] == OUT_OF_SERVICE
    assert MACHINERY_OPERATION_MODE[MAINTENANCE] == MODE_MAINTENANCE
    assert PACKML_STATE[MAINTENANCE] == PACKML_STOPPED and PACKML_UNIT_MODE[MAINTENANCE] == UNIT_MAINTENANCE
    assert MACHINERY_ITEM_STATE[WORKING] == EXECUTING
    # a station shows a working machine before a maintained one, and a starved one before one off
    assert station_state([MAINTENANCE, WORKING]) == WORKING
    assert station_state([OFF, STARVED]) == STARVED
    assert station_state([OFF, MAINTENANCE]) == MAINTENANCE
    # a time counter per reported state, on every PLC
    counters = [variable for variable, _ in TIME_COUNTERS]
    assert counters[-3:] == ["TimePlannedStop", "TimeOff", "TimeMaintenance"]
    assert len(counters) == len(REPORTED_STATES)
    assert set(counters) <= {name for name, _, _ in STATION_VARIABLES}


def test_maintenance_and_switch_off_show_on_the_plc() -> None:
    """A station serviced every 10 operating minutes and one that switches off when starved show
    `maintenance` and `off` in State and count them in TimeMaintenance and TimeOff."""
    stations = [dict(station) for station in FAST_LINE["stations"]]
    stations[0]["maintenance"] = {"every": 600, "duration": 45}
    stations[1]["switch_off"] = {"after": 10, "restart": 5}
    line = line_from_dict({**FAST_LINE, "stations": stations})
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line, config, seed=3)
    runtime.env.run(until=4 * 3600)
    cut, weld = runtime.stations[0], runtime.stations[1]
    assert MAINTENANCE in {state for _, state in cut.states.entries}
    assert OFF in {state for _, state in weld.states.entries}
    assert cut.values["TimeMaintenance"].entries[-1][1] > 0
    assert weld.values["TimeOff"].entries[-1][1] > 0


# -- the shift calendar ----------------------------------------------------------------------------
def test_the_runtime_stands_still_in_a_planned_stop_and_books_it() -> None:
    """In a break every machine shows planned_stop, nothing in the line changes, the engine's planned
    time stands still, the signals go on; after it every machine shows the state it stood in."""
    line = _line()
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line, config, seed=7)
    timebase = runtime.timebase
    timebase.run(until=BREAK[0] - 1)
    before = _snapshot(runtime.stations)
    timebase.run(until=BREAK[0] + 1)
    assert runtime.env.now == pytest.approx(BREAK[0])  # planned time stops with the line
    during = _snapshot(runtime.stations)
    timebase.run(until=BREAK[1] - 1)
    assert _snapshot(runtime.stations) == during
    assert runtime.env.now == pytest.approx(BREAK[0])
    timebase.run(until=BREAK[1] + 1)
    assert runtime.env.now == pytest.approx(BREAK[0] + 1)
    for station in runtime.stations:
        entries = station.states.entries
        stop = entries.index((BREAK[0], PLANNED_STOP))
        assert entries[stop + 1][0] == BREAK[1]  # nothing else shown in the break
        assert entries[stop + 1][1] == entries[stop - 1][1], "the state it stood in comes back"
        # the counters book the break as planned stop, per machine
        totals = station.totals(runtime.now, runtime.in_stop)
        assert totals[PLANNED_STOP] == pytest.approx((BREAK[1] - BREAK[0]) * len(station.machines))
        assert sum(totals) == pytest.approx(runtime.now * len(station.machines))
    assert all(state != PLANNED_STOP for state, _, _ in before)
    assert runtime.stops == [[BREAK[0], BREAK[1]]]
    assert runtime.shift.entries == [(0.0, True), (BREAK[0], False), (BREAK[1], True)]
    record = truth_record(runtime, _clock(runtime))
    assert record["calendar"]["planned_s"] == pytest.approx(runtime.now - (BREAK[1] - BREAK[0]))
    # the line's state read back in the break: the machines in the states they stood in, and their
    # elapsed time in planned seconds
    shown = truth_state(record, BREAK[0] + 300)
    early = truth_state(record, BREAK[0])
    for name, station in shown.stations.items():
        first = early.stations[name].machines or []
        assert [m.state for m in station.machines or ()] == [m.state for m in first]
        for machine, at_stop in zip(station.machines or (), first, strict=True):
            assert machine.elapsed_s == pytest.approx(at_stop.elapsed_s)


def _value_at(entries: list[dict[str, Any]], t: float) -> Any:
    return [entry["value"] for entry in entries if entry["t"] <= t][-1]


def _snapshot(stations: list[StationRuntime]) -> list[tuple[int, int, int]]:
    from simulations.hardware.runtime import station_occupancy

    return [(station.state, station.parts_produced, station_occupancy(station)) for station in stations]


def _clock(runtime: LineRuntime) -> Any:
    from simulations.hardware.clock import ScaledClock

    return ScaledClock(runtime.timebase, 1.0)


def test_a_client_reads_planned_stop_in_a_break_and_the_line_resumes_with_its_parts(tmp_path: Path) -> None:
    line = _line()
    port = free_port()
    speed = 400
    config = HardwareConfig.model_validate(
        {
            "speed": speed,
            "opcua": {
                "endpoint": f"opc.tcp://127.0.0.1:{port}",
                "security": {"policies": ["None"], "pki_dir": str(tmp_path / "pki")},
                "signals": [],
                "linger": 0,
            },
            "mqtt": {"enabled": False},
        }
    )
    truth_file = tmp_path / "truth.json"

    async def scenario() -> dict[str, Any]:
        served: list[ServedLine] = []
        task = asyncio.create_task(
            serve(line, config, duration=4, truth=truth_file, on_ready=served.append, handle_signals=False)
        )
        while not served:
            await asyncio.sleep(0.02)
        seen: dict[str, Any] = {"reads": []}
        async with Client(f"opc.tcp://127.0.0.1:{port}") as client:
            ns = await client.get_namespace_index(NAMESPACE)
            node = lambda name: client.get_node(ua.NodeId(f"pilot.{name}", ns))  # noqa: E731
            planned = node("PlannedProduction")
            seen["planned_at_start"] = await planned.read_value()
            while await planned.read_value():  # wait for the break
                await asyncio.sleep(0.02)
            for _ in range(2):  # early and late in the break (it lasts 1.5 s of wall time)
                read = {"line": [await node(v).read_value() for v in ("MachineryItemState", "PackMLState")]}
                for station in ("cut", "weld", "pack"):
                    names = ("State", "MachineryItemState", "PackMLState", "PartsProduced", "Occupancy")
                    read[station] = [await node(f"{station}.{v}").read_value() for v in names]
                seen["reads"].append(read)
                await asyncio.sleep(0.6)
            while not await planned.read_value():
                await asyncio.sleep(0.02)
            history = await planned.read_raw_history(datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC))
            seen["history"] = [dv.Value.Value for dv in history]
        await task
        return seen

    seen = asyncio.run(scenario())
    record = json.loads(truth_file.read_text())
    assert seen["planned_at_start"] is True
    early, late = seen["reads"]
    assert early["line"] == [NOT_AVAILABLE, PACKML_IDLE]
    for station in ("cut", "weld", "pack"):
        assert early[station][:3] == [PLANNED_STOP, NOT_AVAILABLE, PACKML_IDLE]
        assert late[station] == early[station], "nothing moves in a planned stop"
    assert seen["history"][:3] == [True, False, True]
    start = _parse(record["start"])
    assert record["calendar"]["stops"][0]["t_start"] == BREAK[0]
    assert record["calendar"]["stops"][0]["t_end"] == BREAK[1]
    assert (_parse(record["calendar"]["stops"][0]["ts_start"]) - start).total_seconds() == pytest.approx(
        BREAK[0] / speed, abs=1e-6
    )
    assert record["simulated_s"] == 4 * speed
    for name, station in record["stations"].items():
        assert not [part for part in station["parts"] if BREAK[0] < part["t"] <= BREAK[1]], name
        stop = next(i for i, s in enumerate(station["states"]) if s["state"] == PLANNED_STOP)
        stood, resumed = station["states"][stop - 1], station["states"][stop + 1]
        assert resumed["t"] == BREAK[1] and resumed["state"] == stood["state"], name
        assert station["parts_produced"] > early[name][3], f"{name} produced after the break"
        # the parts in place: the station holds as many parts as the break begins as when it ends
        occupancy = station["values"]["Occupancy"]
        assert _value_at(occupancy, BREAK[0]) == _value_at(occupancy, BREAK[1]) == early[name][4], name


# -- energy ---------------------------------------------------------------------------------------
def test_the_energy_meter_reads_the_line_power_times_the_time_in_each_state(broker: Mosquitto) -> None:
    """With `power:` in the line file the energy sensor integrates the station's power in the state
    of each of its machines: at every reading it equals Σ power × time in state from the engine's own
    accounts, the planned stop at `off`, to rounding."""
    stations = [{**station, "power": POWER} for station in FAST_LINE["stations"]]
    line = _line(stations=stations)
    speed, rate = 500, 10
    config = HardwareConfig.model_validate(
        {
            "speed": speed,
            "opcua": {"enabled": False},
            "mqtt": {
                "url": broker.url,
                "truth_readings": True,
                "connect_timeout": 10,
                "sensors": [
                    {"name": "energy", "unit": "kWh", "idle": 99.0, "integrate": True, "tau": 0, "rate": rate,
                     "line_power": True},
                ],
            },
        }
    )  # fmt: skip
    expected: list[list[float]] = []
    period = speed / rate
    table = [station.power.by_state() for station in line.stations]

    def accounts(runtime: LineRuntime) -> Generator[simpy.Event, Any, None]:
        """At every reading's instant, Σ power × time in state from the engine's machines."""
        env, k = runtime.line_env, 0
        while True:
            now = env.now
            planned = runtime.planned_clock.planned(now)  # type: ignore[union-attr]
            energy = []
            for kw, machines in zip(table, runtime.model.machines, strict=True):
                joules = 0.0
                for machine in machines:
                    times = list(machine.time_in)
                    times[machine.state] += planned - machine.since
                    joules += sum(p * t for p, t in zip(kw, times, strict=True))
                    joules += kw[PLANNED_STOP] * (now - planned)  # the planned stops, at `off`
                energy.append(joules / 3600.0)
            expected.append(energy)
            k += 1
            yield env.timeout(k * period - now)

    def on_ready(served: ServedLine) -> None:
        served.runtime.line_env.process(accounts(served.runtime))

    record = asyncio.run(serve(line, config, duration=3, on_ready=on_ready, handle_signals=False))
    states = {s["state"] for station in record["stations"].values() for s in station["states"]}
    assert PLANNED_STOP in states and WORKING in states
    for index, (name, station) in enumerate(record["stations"].items()):
        readings = [reading["value"] for reading in station["readings"]["energy"]]
        assert len(readings) >= 3 * rate
        counted = [energy[index] for energy in expected[: len(readings)]]
        assert readings == pytest.approx(counted, rel=1e-9), name
        assert readings[-1] > 0.5


def test_the_power_signal_follows_the_line_power_of_each_machine() -> None:
    """A two-machine station's Power reads the sum of its machines' kW; without `power:` in the line
    file the hardware file's levels apply, scaled by the station's factor."""
    spec = HardwareConfig().opcua.signals[2]
    assert spec.name == "Power" and spec.line_power
    flat = spec.model_copy(update={"noise": 0.0, "tau": 0.0})
    bank = SignalBank([flat], station_generator(1, "pack", "signals"), WORKING, power=7.5)
    assert bank.sample(1.0, WORKING)[0] == 7.5
    bank.advance(2.0, WORKING)
    bank.power = 1.5
    assert bank.sample(3.0, STARVED)[0] == 1.5
    plain = SignalBank([flat], station_generator(1, "pack", "signals"), WORKING)
    level = plain.sample(1.0, WORKING)[0]
    assert level == pytest.approx(7.5, rel=0.3) and level != 7.5  # scaled by the station's factor

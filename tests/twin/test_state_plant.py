"""States of a plant's machines in a state file: switched off, and in preventive maintenance.

A live twin starts from the line's state, and a line with `switch_off:` or `maintenance:` has
machines in those states. The engine's own snapshots, taken at many instants of a run of a chain
and of a network line, must be accepted by the state checks, start a run that conserves every
part, and say `off` and `maintenance` where the machines were; a machine started `off` waits for
its restart, and one started in maintenance finishes the service before it works.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from twin.engine import LineModel, simulate
from twin.line import line_from_dict
from twin.state import LineState, MachineState, StateError, StationState, check_state
from twin.station import MAINTENANCE, OFF, SETUP, WORKING

ASSEMBLY = "simulations/lines/assembly.yaml"


def chain() -> dict[str, Any]:
    return {
        "name": "plant",
        "release": {"interarrival": {"dist": "exponential", "mean": 80.0}},
        "horizon": 40_000.0,
        "stations": [
            {
                "name": "mill",
                "cycle_time": {"dist": "exponential", "mean": 40.0},
                "failures": {"ttf": {"dist": "weibull", "shape": 2.0, "scale": 3000.0}, "mttr": 200.0},
                "maintenance": {"every": 1500.0, "duration": {"dist": "uniform", "low": 100, "high": 300}},
                "switch_off": {"after": 60.0, "restart": {"dist": "constant", "value": 45.0}},
            },
            {
                "name": "wash",
                "cycle_time": {"dist": "exponential", "mean": 50.0},
                "buffer": 5,
                "maintenance": {"parts": 40, "duration": {"dist": "constant", "value": 400.0}},
                "switch_off": {"after": 0.0, "restart": {"dist": "exponential", "mean": 30.0}},
            },
        ],
    }


def network() -> dict[str, Any]:
    with open(ASSEMBLY) as file:
        data = yaml.safe_load(file)
    for station in data["stations"]:
        if station["name"] in ("lathe", "screw"):
            station["maintenance"] = {"every": 1200.0, "duration": {"dist": "constant", "value": 150.0}}
        if station["name"] in ("deburr", "pack"):
            station["switch_off"] = {"after": 30.0, "restart": {"dist": "constant", "value": 20.0}}
    return data


@pytest.mark.parametrize("data", [chain(), network()], ids=["chain", "network"])
def test_snapshots_say_off_and_maintenance_and_start_runs_that_keep_every_part(data: dict[str, Any]) -> None:
    line = line_from_dict(data)
    model = LineModel(line, 11)
    seen: set[str] = set()
    for step in range(1, 80):
        model.env.run(until=step * 450.0)
        state = model.snapshot()
        check_state(line, state)
        machines = [m for station in state.stations.values() for m in station.machines or ()]
        seen.update(machine.state for machine in machines)
        assert state.parts_in_line() == len(model.parts_in_line())
        started = LineModel(line, 100 + step, start=_plan(line, state, 100 + step))
        started.env.run(until=1e-9)
        assert len(started.parts_in_line()) == state.parts_in_line()
        started.env.run(until=2_000.0)
        for counts in started.conservation().values():
            assert counts["released"] == counts["out"] + counts["scrapped"] + counts["wip"]
    assert {"off", "maintenance"} <= seen


def _plan(line: Any, state: LineState, seed: int) -> Any:
    from twin.state import start_plan

    return start_plan(line, state, seed)


def test_a_machine_started_off_restarts_for_its_first_part_and_one_in_service_finishes_it() -> None:
    line = line_from_dict(chain())
    state = LineState(
        format="fabbrica-state/1",
        stations={
            "mill": StationState(machines=[MachineState(state="off")]),
            "wash": StationState(buffer=2, machines=[MachineState(state="maintenance", elapsed_s=100.0)]),
        },
    )
    from twin.state import start_plan

    model = LineModel(line, 3, start=start_plan(line, state, 3))
    mill, wash = model.machines[0][0], model.machines[1][0]
    model.env.run(until=1e-9)
    assert mill.state == OFF and wash.state == MAINTENANCE
    model.env.run(until=299.0)  # 400 s of service, 100 s done: 300 s left
    assert wash.state == MAINTENANCE
    model.env.run(until=301.0)
    assert wash.state == WORKING
    # the mill restarts (45 s, booked as set-up) when its first order arrives, then works
    while mill.processed == 0:
        model.env.step()
    assert mill.time_in[SETUP] == pytest.approx(45.0) and mill.time_in[OFF] > 0
    record = simulate(line, seed=3, state=state).kpis
    assert record["stations"]["wash"]["services"] >= 1


def test_a_state_the_station_cannot_be_in_is_refused() -> None:
    data = chain()
    del data["stations"][1]["maintenance"]
    del data["stations"][1]["switch_off"]
    line = line_from_dict(data)
    for machine, message in (
        ("maintenance", "stations.wash.machines[0].state: the station has no preventive maintenance"),
        ("off", "stations.wash.machines[0].state: the station does not switch off"),
    ):
        state = LineState(
            format="fabbrica-state/1", stations={"wash": StationState(machines=[MachineState(state=machine)])}
        )
        with pytest.raises(StateError, match=re.escape(f"state.json: {message}")):
            check_state(line, state, "state.json")

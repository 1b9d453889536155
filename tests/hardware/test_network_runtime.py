"""The simulated PLCs of a line that is a network, against the engine's own objects (no servers).

Every part event says where its part came from and where it goes (`from`, `to`, `reworked`):
followed part by part, the events must chain (each `to` is the station of the part's next event,
each `from` the station of its last one) along the product's route, with the rework the test
station draws. The level variables (`BufferLevel`, an assembly's `BufferLevel.<UPSTREAM>`,
`ReworkLevel`, `TransportLevel`) hold at any instant what the engine's buffers, rework queue and
transport hold then, and `Occupancy`/`OccupancySeconds` count every part in the line, those on
the transport too.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

from simulations.hardware.config import HardwareConfig
from simulations.hardware.runtime import LineRuntime, Timeline, occupancy
from tests.hardware.conftest import NETWORK_LINE
from twin.line import line_from_dict

LINE = line_from_dict(NETWORK_LINE)
HOURS = 4.0


def _runtime(seed: int) -> LineRuntime:
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}, "opcua": {"signals": []}})
    return LineRuntime(LINE, config, seed=seed)


def _value_at(timeline: Timeline, t: float) -> Any:
    return [value for time, value in timeline.entries if time <= t][-1]


def test_every_part_event_says_where_its_part_came_from_and_goes() -> None:
    runtime = _runtime(seed=4)
    trails: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    parts: dict[int, list[Any]] = {}  # the engine's parts, kept so that no id is used twice
    told = runtime.part_finished

    def finished(machine: Any, part: list[Any], cycle_time: float, scrapped: bool, now: float) -> None:
        told(machine, part, cycle_time, scrapped, now)
        station = runtime.stations[machine.station_index]
        trails[id(part)].append((station.name, station.parts[-1]))
        parts[id(part)] = part

    runtime.part_finished = finished  # type: ignore[method-assign]
    runtime.env.run(until=HOURS * 3600)
    network = runtime.model.network
    assert network is not None
    in_line = {id(part) for part in runtime.model.parts_in_line()}
    components = {id(c) for part in [*parts.values(), *runtime.model.parts_in_line()] for c in part[3] or ()}
    routes = {**NETWORK_LINE["routes"], "C": ["cover", "assembly"]}
    seen: Counter[str] = Counter()
    for key, trail in trails.items():
        product = parts[key][0]
        route = routes[product]
        assert trail[0] == (route[0], trail[0][1]) and trail[0][1]["from"] == "release"
        for (before, event), (after, following) in itertools.pairwise(trail):
            assert event["to"] == after and following["from"] == before
            assert event["reworked"] == (before == "test" and after == "wash")
        # the part follows its route, from the wash again after each rework
        position = 0
        for (_, event), (after, _) in itertools.pairwise(trail):
            position = route.index("wash") if event["reworked"] else position + 1
            assert after == route[position]
        visits = [name for name, _ in trail]
        last = trail[-1][1]
        if last["scrapped"]:
            assert last["to"] is None and trail[-1][0] == "cut"  # only cut scraps
            seen["scrapped"] += 1
        elif last["to"] == "exit":
            assert trail[-1][0] == "test" and key not in in_line
            seen["out"] += 1
        elif key in components:  # a cover joined an assembly: the assembly's event is its base's
            assert product == "C" and last["to"] == "assembly"
            seen["joined"] += 1
        else:  # still on its way to `to`
            assert key in in_line
            seen["in line"] += 1
        seen["reworked"] += sum(event["reworked"] for _, event in trail)
        seen["tested"] += visits.count("test")  # the test scraps nothing
    # the events are those the PLCs publish: every finished part has one, and nothing else
    assert sum(len(trail) for trail in trails.values()) == sum(len(s.parts) for s in runtime.stations)
    assert min(seen.values()) > 0, seen
    assert seen["out"] > 600 and seen["joined"] > 600
    assert seen["reworked"] / seen["tested"] == pytest.approx(0.2, abs=0.04)


def test_the_level_variables_hold_what_the_engine_holds_at_any_instant() -> None:
    runtime = _runtime(seed=5)
    network = runtime.model.network
    assert network is not None
    levels = {station.name: station.levels for station in runtime.stations}
    assert levels == {
        "cut": [],  # a saturated head that no route comes back to has no buffer to show
        "lathe": ["BufferLevel", "TransportLevel"],
        "cover": [],
        "assembly": ["BufferLevel.lathe", "BufferLevel.cover"],
        "wash": ["BufferLevel", "ReworkLevel"],
        "test": ["BufferLevel"],
    }
    places = {  # what each variable shows, in the engine
        ("lathe", "BufferLevel"): network.inputs[1][0].items,
        ("lathe", "TransportLevel"): network.transports[1].on_the_way,  # type: ignore[union-attr]
        ("assembly", "BufferLevel.lathe"): network.inputs[3][0].items,
        ("assembly", "BufferLevel.cover"): network.inputs[3][1].items,
        ("wash", "BufferLevel"): network.inputs[4][0].items,
        ("wash", "ReworkLevel"): network.returns[4].items,  # type: ignore[union-attr]
        ("test", "BufferLevel"): network.inputs[5][0].items,
    }
    instants = np.sort(np.random.default_rng(5).uniform(30, HOURS * 3600, 300))
    held: list[dict[tuple[str, str], int]] = []
    for t in instants:
        runtime.env.run(until=t)
        held.append({key: len(items) for key, items in places.items()})
    seen: Counter[tuple[str, str]] = Counter()
    for t, engine in zip(instants, held, strict=True):
        for (station, variable), count in engine.items():
            assert _value_at(runtime.by_name[station].values[variable], float(t)) == count, (
                t,
                station,
                variable,
            )
            seen[station, variable] += count > 0
    assert min(seen.values()) > 10, seen  # every place held parts at some of the instants


def test_the_occupancies_count_every_part_and_their_integral_is_exact() -> None:
    """At each refresh the stations' Occupancy adds up to the engine's WIP, and OccupancySeconds is
    the integral of the station's occupancy computed here after every single engine event: parts in
    its buffers, rework queue, on the transport into it and on its machines."""
    runtime = _runtime(seed=6)
    env, model = runtime.env, runtime.model
    network = model.network
    assert network is not None

    def held() -> list[int]:
        counts = []
        for station in runtime.stations:
            index = station.index
            places = [buffer.items for buffer in network.inputs[index]]
            if network.returns[index] is not None:
                places.append(network.returns[index].items)  # type: ignore[union-attr]
            if network.transports[index] is not None:
                places.append(network.transports[index].on_the_way)  # type: ignore[union-attr]
            counts.append(occupancy(station.machines, None) + sum(len(items) for items in places))
        return counts

    area = [0.0] * len(runtime.stations)
    last_t, last = 0.0, held()
    expected: dict[float, list[float]] = {}
    wip: dict[float, int] = {}
    commands = {3000.0: ("wash", "Stop"), 3600.0: ("wash", "Start"), 6000.0: ("lathe", "Stop")}
    commands |= {6500.0: ("lathe", "Start")}
    called = set(commands)  # a call acts after the refresh of its instant: its parts move after it
    while env.peek() <= HOURS * 3600:
        if commands and env.peek() > min(commands):  # an operator's call between two engine steps
            runtime.command(*commands.pop(min(commands)))
            last = held()
        env.step()
        now = env.now
        if now > last_t:
            area = [a + n * (now - last_t) for a, n in zip(area, last, strict=True)]
            last_t = now
        last = held()
        if now % 10 == 0:  # a refresh instant: the integral up to it is complete
            expected[now] = list(area)
            wip[now] = model.wip

    assert len(expected) > 1000 and not commands
    for t, integrals in expected.items():
        published = [_value_at(s.values["OccupancySeconds"], t) for s in runtime.stations]
        assert published == pytest.approx(integrals, rel=1e-12, abs=1e-9), t
        if t not in called:
            assert sum(_value_at(s.values["Occupancy"], t) for s in runtime.stations) == wip[t], t
    assert max(wip.values()) >= 8 and all(published)

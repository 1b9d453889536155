"""The line's state rebuilt from what the connectors recorded (`twinloop.state.reconstruct_state`).

A served line (virtual PLCs and sensors, the connectors into the embedded historian, as in
`fabbrica demo`) is recorded; the state rebuilt from the historian at several instants must be
the truth file's state then (`simulations.hardware.truth.truth_state`): buffers, machine
states, products and counts equal, elapsed times within one publishing interval of the PLCs
(in fact to the microsecond of the source timestamps, times the speed). A line that is a network
is served too: an assembly's buffers per input, its rework queue and the parts on its transport
(timed from the transport's count and its senders' states) equal the truth's; and those times
are held against the instants the engine's parts really came on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from foundation.errors import InputError
from simulations.hardware.config import HardwareConfig
from simulations.hardware.truth import truth_state
from tests.hardware.conftest import FAST_LINE, NETWORK_LINE
from twin.engine import LineModel, simulate
from twin.line import Line, line_from_dict, load_line
from twin.state import LineState, check_state
from twinloop.history import Query, open_source
from twinloop.state import LOOKBACK_S, reconstruct_state

ROOT = Path(__file__).resolve().parents[1]
SPEED = 1200.0
HOURS = 4.0
# the pilot line with orders released into a buffer at its first station, two parallel machines at
# pack, and a wash station behind a hand-over (no buffer) that breaks down on calendar time
LINE: dict[str, Any] = {
    **FAST_LINE,
    "release": {"interarrival": {"dist": "exponential", "mean": 19}},
    "stations": [
        {**FAST_LINE["stations"][0], "buffer": 3},
        *FAST_LINE["stations"][1:],
        {"name": "wash", "cycle_time": 12, "buffer": 0,
         "failures": {"mtbf": 300, "mttr": 30, "basis": "calendar"}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Line, dict[str, Any], Query]:
    """HOURS of the line served at SPEED and recorded by the connectors: line, truth, historian."""
    from twinloop.demo import stream_line

    out = tmp_path_factory.mktemp("recorded")
    line = line_from_dict(LINE)
    truth, _, _, health = asyncio.run(
        stream_line(line, out, speed=SPEED, hours=HOURS, mqtt_url=None, sink=None, seed=7)
    )
    assert health["dropped"] == 0 and health["rejected"] == 0
    (out / "truth.json").write_text(json.dumps(truth, default=str))
    return line, truth, open_source(str(out / "historian.duckdb"))


def _start(truth: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(truth["start"].replace("Z", "+00:00"))


def _instant(truth: dict[str, Any], t: float) -> tuple[datetime, float]:
    """The wall instant of simulated second ~`t`, moved off any recorded change (a change within a
    few ms could fall either side once its timestamp is rounded to the microsecond), and its
    simulated second exactly."""
    changes = np.array(
        sorted(
            entry["t"]
            for station in truth["stations"].values()
            for timeline in [station["states"], *station["values"].values()]
            for entry in timeline
        )
    )
    while np.min(np.abs(changes - t)) < 0.05:
        t += 0.1
    at = _start(truth) + timedelta(seconds=t / SPEED)
    return at, (at - _start(truth)).total_seconds() * SPEED


def _inside(truth: dict[str, Any], states: tuple[str, ...]) -> list[float]:
    """For each of `states`, the middle of the first period in it that starts in the second half."""
    found: dict[str, float] = {}
    half = truth["simulated_s"] / 2
    for station in truth["stations"].values():
        changes = station["states"]
        for entry, after in itertools.pairwise(changes):
            if entry["name"] in states and entry["name"] not in found and entry["t"] > half:
                found[entry["name"]] = (entry["t"] + after["t"]) / 2
    assert set(found) == set(states)
    return list(found.values())


def _compare(got: LineState, want: LineState) -> float:
    """Assert that everything but the elapsed times is equal; return the largest elapsed error (s)."""
    worst = 0.0
    assert set(got.stations) == set(want.stations)
    for name, expected in want.stations.items():
        station = got.stations[name]
        assert (station.buffer, station.produced) == (expected.buffer, expected.produced), name
        assert station.machines is not None and expected.machines is not None
        for machine, truth in zip(station.machines, expected.machines, strict=True):
            assert (machine.state, machine.product) == (truth.state, truth.product), name
            worst = max(worst, abs(machine.elapsed_s - truth.elapsed_s))
    assert got.released == want.released
    return worst


def test_the_state_rebuilt_from_the_historian_is_the_truth_at_every_instant(
    recorded: tuple[Line, dict[str, Any], Query],
) -> None:
    line, truth, query = recorded
    tick = HardwareConfig().tick * SPEED  # one publishing interval of the PLCs, in line seconds
    worst = 0.0
    seen = {"buffered": 0, "down": 0, "working": 0, "setup": 0, "blocked": 0}
    # from the middle on: the connectors record from when they first subscribed, a few wall seconds
    # (an hour or more of line time at this speed) after the line started on a loaded machine
    instants = [
        *np.linspace(0.45, 0.97, 7) * truth["simulated_s"],
        *_inside(truth, ("setup", "blocked", "down")),
    ]
    for t in instants:
        at, t_exact = _instant(truth, float(t))
        got = reconstruct_state(query, line, at, speed=SPEED)
        want = truth_state(truth, t_exact)
        assert got.time == at
        worst = max(worst, _compare(got, want))
        for station in want.stations.values():
            seen["buffered"] += station.buffer > 0
            for machine in station.machines or []:
                if machine.state in seen:
                    seen[machine.state] += 1
    assert worst <= tick
    assert worst <= 2e-6 * SPEED  # the source timestamps' microseconds, twice, in line seconds
    assert min(seen.values()) > 0, seen  # buffers held parts; machines worked, set up, broke, blocked


def test_the_speed_is_inferred_when_not_given(recorded: tuple[Line, dict[str, Any], Query]) -> None:
    """Without the speed, it comes from the PLC values read: the parts' cycle times over the
    machines' working time, snapped to a round speed-up; so the state is the same."""
    line, truth, query = recorded
    for fraction in (0.5, 0.95):
        at, t_exact = _instant(truth, fraction * truth["simulated_s"])
        got = reconstruct_state(query, line, at)
        assert _compare(got, truth_state(truth, t_exact)) <= 2e-6 * SPEED


def in_memory(query: Query) -> Query:
    """The same records, read once (each widening of the window reads the historian file again)."""
    frames = {measurement: query(measurement, 0, 2**62) for measurement in ("machine", "part")}

    def read(measurement: str, lo: int, hi: int) -> pd.DataFrame:
        frame = frames[measurement]
        ns = frame["time"].dt.as_unit("ns").astype("int64")
        return frame[(ns >= lo) & (ns < hi)]

    return read


def test_what_the_data_lacks_is_one_line(recorded: tuple[Line, dict[str, Any], Query]) -> None:
    line, truth, query = recorded
    query = in_memory(query)
    before = _start(truth) - timedelta(minutes=1)
    with pytest.raises(InputError) as error:
        reconstruct_state(query, line, before, speed=SPEED)
    assert str(error.value).startswith("--at: nothing recorded at or before")
    at = _start(truth) + timedelta(seconds=5)
    other = line_from_dict({**LINE, "name": "other"})
    with pytest.raises(InputError) as error:
        reconstruct_state(query, other, at, speed=SPEED)
    assert "no data of line 'other'" in str(error.value) and "(lines in the data: pilot)" in str(error.value)
    more = line_from_dict({**LINE, "stations": [*LINE["stations"], {"name": "paint", "cycle_time": 9}]})
    with pytest.raises(InputError) as error:
        reconstruct_state(query, more, at, speed=SPEED)
    assert "no data of station(s) paint" in str(error.value) and "\n" not in str(error.value)


# -- on hand-made records -------------------------------------------------------------------------
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
ONE_DATA: dict[str, Any] = {
    "name": "one",
    "release": {"interarrival": 30},
    "products": [{"name": "A", "mix": 0.5}, {"name": "B", "mix": 0.5}],
    "stations": [
        {"name": "cut", "cycle_time": 20, "buffer": 5, "failures": {"mtbf": 600, "mttr": 60}},
        {"name": "pack", "cycle_time": 15, "buffer": 2},
    ],
}
ONE = line_from_dict(ONE_DATA)


def _records(rows: list[tuple[float, str, dict[str, Any]]]) -> tuple[Query, list[tuple[int, int]]]:
    """A Query over (seconds after T0, station, fields) rows of line `one`; and the windows it was asked."""
    frame = pd.DataFrame(
        [
            {"time": pd.Timestamp(T0 + timedelta(seconds=t)), "line": "one", "station": s, **f}
            for t, s, f in rows
        ]
    )
    asked: list[tuple[int, int]] = []

    def read(measurement: str, lo: int, hi: int) -> pd.DataFrame:
        asked.append((lo, hi))
        if measurement != "machine":
            return pd.DataFrame()
        ns = frame["time"].dt.as_unit("ns").astype("int64")
        return frame[(ns >= lo) & (ns < hi)].reset_index(drop=True)

    return read, asked


BASE = [
    (0.0, "cut", {"State": 2, "Product": "", "PartsStarted": 0, "BufferLevel": 0, "PartsProduced": 0}),
    (0.0, "cut", {"PartsReleased": 0}),
    (0.0, "pack", {"State": 2, "Product": "", "PartsStarted": 0, "BufferLevel": 0, "PartsProduced": 0}),
]


def test_a_state_older_than_the_first_window_is_found_by_widening() -> None:
    """cut broke down 2 hours before `at` (longer than the first 15 minutes read): the window
    widens until it holds the breakdown, and the elapsed time runs from it."""
    rows = [
        *BASE,
        (10.0, "cut", {"State": 0, "Product": "B", "PartsStarted": 1, "PartsReleased": 1}),
        (25.0, "cut", {"State": 3}),
        (7000.0, "pack", {"BufferLevel": 0}),  # something recent, so the first window is not empty
    ]
    read, asked = _records(rows)
    at = T0 + timedelta(seconds=25 + 7200)
    state = reconstruct_state(read, ONE, at, speed=1.0)
    cut = state.stations["cut"]
    assert cut.machines is not None
    assert (cut.machines[0].state, cut.machines[0].product) == ("down", "B")
    assert cut.machines[0].elapsed_s == pytest.approx(7200.0)
    assert state.released == 1 and cut.produced == 0
    spans = sorted({(hi - lo) / 1e9 for lo, hi in asked})
    assert spans == pytest.approx(LOOKBACK_S[:2])  # 15 minutes, then 4 hours


def test_a_new_part_restarts_the_cycle_and_a_value_stored_again_does_not() -> None:
    rows = [
        *BASE,
        (10.0, "cut", {"State": 0, "Product": "A", "PartsStarted": 1}),
        (30.0, "cut", {"PartsStarted": 2, "Product": "B", "PartsProduced": 1}),  # handed on, took the next
        (40.0, "cut", {"State": 0}),  # a restarted PLC sends its state again: no new state
        (31.0, "pack", {"State": 0, "Product": "A", "PartsStarted": 1, "BufferLevel": 1}),
        (35.0, "pack", {"State": 5}),  # stopped by an operator: empty, as in the twin
    ]
    read, _ = _records(rows)
    state = reconstruct_state(read, ONE, T0 + timedelta(seconds=50), speed=2.0)
    cut, pack = state.stations["cut"], state.stations["pack"]
    assert cut.machines is not None and pack.machines is not None
    assert cut.machines[0].model_dump(exclude_none=True) == {
        "state": "working",
        "elapsed_s": 40.0,
        "product": "B",
    }
    assert pack.machines[0].model_dump(exclude_none=True) == {"state": "starved", "elapsed_s": 0.0}
    assert (pack.buffer, cut.produced) == (1, 1)


def test_without_buffer_levels_the_sampled_occupancy_is_used_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        (0.0, "cut", {"State": 0, "Product": "Z", "PartsStarted": 1, "PartsProduced": 0, "Occupancy": 4}),
        (0.0, "pack", {"State": 2, "PartsProduced": 0, "Occupancy": 0}),
    ]
    read, _ = _records(rows)
    with caplog.at_level(logging.WARNING):
        state = reconstruct_state(read, ONE, T0 + timedelta(seconds=5), speed=1.0)
    cut = state.stations["cut"]
    assert cut.buffer == 3  # 4 held, one of them on the working machine
    assert cut.machines is not None and cut.machines[0].product is None  # Z: not a product of the line
    assert "no BufferLevel recorded" in caplog.text and "products Z are not in the line file" in caplog.text


def test_a_station_without_its_machines_states_is_one_line() -> None:
    two = line_from_dict(
        {**ONE_DATA, "stations": [ONE_DATA["stations"][0], {**ONE_DATA["stations"][1], "capacity": 2}]}
    )
    read, _ = _records(BASE)
    with pytest.raises(InputError) as error:
        reconstruct_state(read, two, T0 + timedelta(seconds=5), speed=1.0)
    assert str(error.value).startswith("--source: no Machine1State of station 'pack'")


def test_the_names_read_are_those_the_virtual_plcs_publish() -> None:
    """The names the reconstruction reads are the ones the virtual PLCs publish."""
    from simulations.hardware import runtime
    from twinloop import state

    assert state.BUFFER_LEVEL == runtime.BUFFER_LEVEL and state.RELEASED == runtime.RELEASE_COUNTER
    for machines in (1, 3):
        for k in range(machines):
            for name in ("Product", "PartsStarted"):
                assert state.machine_variable(name, k, machines) == runtime.machine_variable(
                    name, k, machines
                )
            if machines > 1:
                assert state.state_variable(k, machines) == runtime.machine_state_variable(k)
    assert state.REWORK_LEVEL == runtime.REWORK_LEVEL and state.TRANSPORT_LEVEL == runtime.TRANSPORT_LEVEL
    assert state.input_level("lathe") == runtime.input_level_variable("lathe")


# -- a line that is a network (issue 17) ------------------------------------------------------------
NETWORK_HOURS = 3.0


@pytest.fixture(scope="module")
def recorded_network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Line, dict[str, Any], Query]:
    """The small network line of tests/hardware (routes, an assembly of two branches, an AGV into the
    lathe, rework from the test to the wash) served at SPEED and recorded: line, truth, historian."""
    from twinloop.demo import stream_line

    out = tmp_path_factory.mktemp("recorded-network")
    line = line_from_dict(NETWORK_LINE)
    truth, _, _, health = asyncio.run(
        stream_line(line, out, speed=SPEED, hours=NETWORK_HOURS, mqtt_url=None, sink=None, seed=7)
    )
    assert health["dropped"] == 0 and health["rejected"] == 0
    return line, truth, open_source(str(out / "historian.duckdb"))


def _truth_value(truth: dict[str, Any], station: str, variable: str, t: float) -> int:
    entries = truth["stations"][station]["values"][variable]
    shown = [entry["value"] for entry in entries if entry["t"] <= t]
    return int(shown[-1]) if shown else 0


def _truth_on_transport(truth: dict[str, Any], station: str, sender: str, t: float) -> list[float]:
    """The time each part on the transport at `t` has been on it, oldest first, as the truth's
    TransportLevel and `sender`'s states show it: the parts leave in the order they came on, and a
    sender that stops being blocked while every place is taken and the count does not change took
    the place of a part that left at that instant."""
    changes = {
        entry["t"]: int(entry["value"]) for entry in truth["stations"][station]["values"]["TransportLevel"]
    }
    states = truth["stations"][sender]["states"]
    unblocked = [b["t"] for a, b in itertools.pairwise(states) if a["state"] == 1 and b["state"] != 1]
    places = NETWORK_LINE["stations"][1]["transport"]["capacity"]
    on: list[float] = []
    for when, level in sorted([*changes.items(), *((u, None) for u in unblocked)], key=lambda e: e[0]):
        if when > t:
            break
        if level is None:
            if when not in changes and len(on) == places:
                on = [*on[1:], when]
        else:
            on = on[len(on) - level :] if level <= len(on) else on + [when] * (level - len(on))
    return [t - since for since in on]


def test_a_network_state_rebuilt_from_the_historian_is_the_truth(
    recorded_network: tuple[Line, dict[str, Any], Query],
) -> None:
    """Machines, products and counts as on a chain; an assembly's buffer per input, the rework queue
    and the parts on the transport (their elapsed travel from the count's changes) as the PLCs
    showed them; the state is one the line can hold, and a forecast runs from it."""
    line, truth, query = recorded_network
    seen = {"assembly": 0, "returns": 0, "transport": 0}
    worst = 0.0
    for t in np.linspace(0.45, 0.97, 12) * truth["simulated_s"]:
        at, t_exact = _instant(truth, float(t))
        got = reconstruct_state(query, line, at, speed=SPEED)
        check_state(line, got, "rebuilt")
        want = truth_state(truth, t_exact)
        assembly = got.stations["assembly"]
        buffers = {
            up: _truth_value(truth, "assembly", f"BufferLevel.{up}", t_exact) for up in ("lathe", "cover")
        }
        assert assembly.buffer is None and assembly.buffers == buffers
        assert got.stations["wash"].returns == _truth_value(truth, "wash", "ReworkLevel", t_exact)
        transport = got.stations["lathe"].transport
        assert transport is not None and all(part.remaining_s is None for part in transport)
        elapsed = [part.elapsed_s for part in transport]
        expected = _truth_on_transport(truth, "lathe", "cut", t_exact)
        assert len(elapsed) == len(expected) == _truth_value(truth, "lathe", "TransportLevel", t_exact)
        worst = max([worst, *(abs(a - b) for a, b in zip(elapsed, expected, strict=True))])  # type: ignore[operator]
        want.stations["assembly"] = want.stations["assembly"].model_copy(
            update={"buffer": None, "buffers": buffers}
        )
        assert _compare(got, want) <= 2e-6 * SPEED
        seen["assembly"] += sum(buffers.values()) > 0
        seen["returns"] += got.stations["wash"].returns or 0
        seen["transport"] += len(elapsed)
    assert worst <= 2e-6 * SPEED
    assert min(seen.values()) > 0, seen
    run = simulate(line, seed=3, horizon=1800.0, warmup=0.0, state=got)
    assert run.kpis["parts_out"] > 0


def test_the_parts_on_a_transport_are_timed_from_its_count_first_on_first_off() -> None:
    """TransportLevel 0 -> 1 (t 10) -> 2 (12) -> 1 (15) -> 2 (20): at 30 the parts on it came on at
    12 and 20 (the one of 10 left at 15). A sender that stops being blocked while both places are
    taken took the place of a part that left (the count did not change)."""
    line = line_from_dict(
        {
            **ONE_DATA,
            "stations": [
                ONE_DATA["stations"][0],
                {**ONE_DATA["stations"][1], "transport": {"time": 9, "capacity": 2}},
            ],
        }
    )
    rows = [*BASE, (0.0, "pack", {"TransportLevel": 0})]
    rows += [(t, "pack", {"TransportLevel": level}) for t, level in ((10, 1), (12, 2), (15, 1), (20, 2))]
    read, _ = _records(rows)
    state = reconstruct_state(read, line, T0 + timedelta(seconds=30), speed=2.0)
    transport = state.stations["pack"].transport
    assert transport is not None
    assert [part.elapsed_s for part in transport] == [36.0, 20.0]  # line seconds: twice the recorded
    # cut, blocked with both places taken, takes one at 25 as the part of 12 leaves: no count changes
    read, _ = _records([*rows, (22, "cut", {"State": 1}), (25, "cut", {"State": 0, "PartsStarted": 1})])
    transport = (
        reconstruct_state(read, line, T0 + timedelta(seconds=30), speed=2.0).stations["pack"].transport
    )
    assert [part.elapsed_s for part in transport or ()] == [20.0, 10.0]
    without = [row for row in rows if "TransportLevel" not in row[2]]
    read, _ = _records(without)
    with pytest.raises(InputError) as error:
        reconstruct_state(read, line, T0 + timedelta(seconds=30), speed=2.0)
    assert str(error.value).startswith("--source: no TransportLevel of station 'pack' at or before")


def _rebuilt_against_true_boarding(line: Line, station: str, sender: str, instants: int) -> tuple[int, float]:
    """At `instants` instants of a run of `line`, the transport into `station` timed by
    `twinloop.state._boarded` from its count and `sender`'s states, recorded as the virtual PLCs
    record them (`simulations.hardware.runtime.Timeline`: one change per instant), against the
    instants the engine's parts really came on: (instants timed exactly, largest error in s)."""
    from simulations.hardware.runtime import Timeline
    from twin.station import BLOCKED
    from twinloop.state import _boarded

    states = Timeline()
    names = [s.name for s in line.stations]

    class Watch:
        def machine_state(self, machine: Any, state: int, now: float) -> None:
            if names[machine.station_index] == sender:
                states.record(now, state)

        def part_finished(self, *args: Any) -> None:
            pass

    model = LineModel(line, 7, observer=Watch())  # type: ignore[arg-type]
    transport = model.network.transports[names.index(station)]  # type: ignore[union-attr]
    came_on: dict[int, float] = {}
    board = transport._board

    def boarding(part: list[Any], travel: float) -> None:
        came_on[id(part)] = model.env.now
        board(part, travel)

    transport._board = boarding  # type: ignore[method-assign]
    levels = Timeline()
    transport.watch = lambda step: levels.record(model.env.now, len(transport.on_the_way) + step)
    places = line.stations[names.index(station)].transport.capacity  # type: ignore[union-attr]
    exact, worst = 0, 0.0
    for at in np.linspace(3600.0, 8 * 3600.0, instants):
        model.env.run(until=at)
        rows = pd.DataFrame(
            {
                "time": [T0 + timedelta(seconds=t) for t, _ in levels.entries],
                "TransportLevel": [v for _, v in levels.entries],
            }
        )
        changes = states.entries
        unblocked = [
            T0 + timedelta(seconds=b[0]) for a, b in itertools.pairwise(changes) if a[1] == BLOCKED != b[1]
        ]
        rebuilt = sorted(
            (T0 + timedelta(seconds=at) - since).total_seconds()
            for since in _boarded(rows, unblocked, len(transport.on_the_way), places)
        )
        true = sorted(at - came_on[id(part)] for part in transport.on_the_way)
        errors = [abs(a - b) for a, b in zip(rebuilt, true, strict=True)]
        exact += all(error < 1e-5 for error in errors)
        worst = max([worst, *errors])
    return exact, worst


def test_the_transports_parts_are_timed_as_they_came_on() -> None:
    """On simulations/lines/assembly.yaml (the AGVs into packing, lognormal trips) the rebuilt
    times are the true ones at every instant; where parts overtake each other on the way (the
    tests' network line: uniform trips of 5-9 s) first on first off is wrong now and then."""
    assembly = load_line(ROOT / "simulations" / "lines" / "assembly.yaml")
    assert _rebuilt_against_true_boarding(assembly, "pack", "test", 200) == (
        200,
        pytest.approx(0.0, abs=1e-5),
    )
    exact, _ = _rebuilt_against_true_boarding(line_from_dict(NETWORK_LINE), "lathe", "cut", 200)
    assert exact >= 160


# -- a plant's states: switched off, in maintenance, and in a planned stop ---------------------------
PLANT_LINE: dict[str, Any] = {
    **LINE,
    "stations": [
        LINE["stations"][0],
        {**LINE["stations"][1], "maintenance": {"parts": 60, "duration": 90}},
        {**LINE["stations"][2], "switch_off": {"after": 20, "restart": 15}},
        {**LINE["stations"][3],
         "switch_off": {"after": 5, "restart": {"dist": "uniform", "low": 5, "high": 10}}},
    ],
    "calendar": {"shifts": [{"start": "00:00", "end": "24:00"}],
                 "breaks": [{"start": "03:00", "end": "03:20"}]},
}  # fmt: skip


@pytest.fixture(scope="module")
def recorded_plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Line, dict[str, Any], Query]:
    from twinloop.demo import stream_line

    out = tmp_path_factory.mktemp("recorded-plant")
    line = line_from_dict(PLANT_LINE)
    truth, _, _, health = asyncio.run(
        stream_line(line, out, speed=SPEED, hours=HOURS, mqtt_url=None, sink=None, seed=7)
    )
    assert health["dropped"] == 0 and health["rejected"] == 0
    return line, truth, open_source(str(out / "historian.duckdb"))


def test_off_maintenance_and_a_planned_stop_are_rebuilt_as_the_truth(
    recorded_plant: tuple[Line, dict[str, Any], Query],
) -> None:
    """Inside a switch-off, a service and the break, the rebuilt state is the truth's: a machine
    off is `off`, one in service `maintenance`, and in the break every machine is as it stood when
    the break began, its elapsed time counted in planned time."""
    line, truth, query = recorded_plant
    tick = HardwareConfig().tick * SPEED
    instants = _inside(truth, ("off", "maintenance", "planned_stop"))
    worst = 0.0
    for t in instants:
        at, t_exact = _instant(truth, t)
        got = reconstruct_state(query, line, at, speed=SPEED)
        check_state(line, got)
        worst = max(worst, _compare(got, truth_state(truth, t_exact)))
    assert worst <= tick

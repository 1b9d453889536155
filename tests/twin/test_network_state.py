"""A network line's state (`twin.network_state`, issue 17): refusals, the snapshot round trip, the plan.

- A state the network line cannot hold is refused in one line naming the source and the field;
  a chain line refuses the network keys.
- A snapshot of a running network model (assemblies' buffers per input, rework queues, parts on
  transports with their remaining time) restarts the line where it was: the same parts in the same
  places and states, the same products per product (components included); with constant times the
  continued run makes its parts at the same instants as the run that was snapshotted.
- The conservation law holds from a start, at any instant after it.
- Parts are placed where their products can be, routed parts at the first visit of their station,
  assembled parts with their components; a blocked machine's part goes on, it is not reworked;
  a state that differs at one place leaves the other places' draws alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twin.engine import LineModel, simulate
from twin.line import line_from_dict, load_line
from twin.network_state import NetworkStart
from twin.state import LineState, StateError, check_state, read_state, start_plan, state_from_dict

ASSEMBLY = Path(__file__).parents[2] / "simulations" / "lines" / "assembly.yaml"

# two products with their own routes (B skips the wash), a lid made by a branch of its own, an
# assembly of two machines, a test that sends one part in ten back to the screwing station, a
# transport of two places into packing; failures on operating and on calendar time, a set-up, scrap
NETWORK: dict[str, Any] = {
    "name": "cell",
    "release": "saturated",
    "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}, {"name": "lid"}],
    "routes": {
        "A": ["cut", "drill", "wash", "join", "screw", "test", "pack"],
        "B": ["cut", "drill", "join", "screw", "test", "pack"],
    },
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 30}, "setup": 10,
         "failures": {"mtbf": 600, "mttr": 30}},
        {"name": "drill", "cycle_time": {"dist": "gamma", "mean": 28, "cv": 0.3}, "buffer": 3},
        {"name": "wash", "cycle_time": 25, "buffer": 2,
         "failures": {"mtbf": 900, "mttr": 40, "basis": "calendar"}},
        {"name": "press", "release": "saturated", "product": "lid",
         "cycle_time": {"dist": "uniform", "low": 20, "high": 35}},
        {"name": "join", "inputs": ["wash", "press"], "capacity": 2, "buffer": 3,
         "cycle_time": {"dist": "lognormal", "mean": 45, "cv": 0.2}},
        {"name": "screw", "cycle_time": {"dist": "exponential", "mean": 18}, "buffer": 2},
        {"name": "test", "cycle_time": {"dist": "exponential", "mean": 20}, "buffer": 2, "scrap": 0.02,
         "rework": {"probability": 0.1, "to": "screw"}},
        {"name": "pack", "cycle_time": {"dist": "normal", "mean": 22, "sd": 3}, "buffer": 2,
         "transport": {"time": {"dist": "exponential", "mean": 60}, "capacity": 2}},
    ],
}  # fmt: skip
LINE = line_from_dict(NETWORK)
CHAIN = line_from_dict(
    {"name": "chain", "stations": [{"name": "saw", "cycle_time": 30}, {"name": "pack", "cycle_time": 20}]}
)


def state(stations: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"format": "fabbrica-state/1", "stations": stations or {}, **fields}


def on(state_name: str, elapsed: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {"state": state_name, "elapsed_s": elapsed, **fields}


# -- refusals --------------------------------------------------------------------------------------
REFUSED: list[tuple[Any, str]] = [
    (
        state({"join": {"buffer": 1}}),
        "stations.join.buffer: 'join' is an assembly with a buffer per input:"
        " give buffers: {wash: n, press: n}",
    ),
    (
        state({"drill": {"buffers": {"cut": 1}}}),
        "stations.drill.buffers: only an assembly (a station with several inputs) has a buffer per input;"
        " 'drill' has one: give buffer: n",
    ),
    (
        state({"join": {"buffers": {"drill": 1}}}),
        "stations.join.buffers.drill: not an input of 'join' (inputs: wash, press)",
    ),
    (
        state({"join": {"buffers": {"wash": 4}}}),
        "stations.join.buffers.wash: 4 parts, but the buffer holds 3",
    ),
    (state({"join": {"buffers": {"press": -1}}}), "stations.join.buffers.press: must be >= 0, got -1"),
    (state({"screw": {"buffer": 3}}), "stations.screw.buffer: 3 parts, but the buffer holds 2"),
    (
        state({"pack": {"transport": [{"remaining_s": 1}, {"remaining_s": 0}, {"elapsed_s": 4}]}}),
        "stations.pack.transport: 3 parts, but the transport holds 2",
    ),
    (
        state({"test": {"transport": []}}),
        "stations.test.transport: 'test' has no transport (docs/networks.md)",
    ),
    (
        state({"test": {"returns": 1}}),
        "stations.test.returns: no station sends parts back to 'test' for rework",
    ),
    (
        state({"pack": {"transport": [{"remaining_s": 1, "elapsed_s": 2}]}}),
        "stations.pack.transport[0]: give exactly one of remaining_s or elapsed_s",
    ),
    (
        state({"pack": {"transport": [{}]}}),
        "stations.pack.transport[0]: give exactly one of remaining_s or elapsed_s",
    ),
    (
        state({"pack": {"transport": [{"remaining_s": -1}]}}),
        "stations.pack.transport[0].remaining_s: must be >= 0",
    ),
    (
        state({"pack": {"transport": [{"remaining_s": 1, "product": "Z"}]}}),
        "stations.pack.transport[0].product: unknown product 'Z' (products: A, B, lid)",
    ),
    (
        state({"pack": {"transport": [{"remaining_s": 1, "product": "lid"}]}}),
        "stations.pack.transport[0].product: no part of 'lid' is ever on the transport into 'pack'"
        " (products there: A, B)",
    ),
    (
        state({"wash": {"machines": [on("working", product="B")]}}),
        "stations.wash.machines[0].product: no part of 'B' is ever on a machine of 'wash'"
        " (products there: A)",
    ),
    (
        state({"press": {"machines": [on("working", product="A")]}}),
        "stations.press.machines[0].product: no part of 'A' is ever on a machine of 'press'"
        " (products there: lid)",
    ),
    (
        state({"pack": {"machines": [on("blocked")]}}),
        "stations.pack.machines[0].state: a machine of 'pack' is never blocked: its parts leave the line",
    ),
    (
        state({"join": {"machines": [on("working"), on("down")]}}),
        "stations.join.machines[1].state: the station has no failures",
    ),
    (
        state({"paint": {}}),
        "stations.paint: unknown station (stations: cut, drill, wash, press, join, screw, test, pack)",
    ),
]


@pytest.mark.parametrize(
    "data, message", REFUSED, ids=[message.split(":")[0] + str(k) for k, (_, message) in enumerate(REFUSED)]
)
def test_a_state_the_network_cannot_hold_is_refused_in_one_line_naming_the_field(
    data: Any, message: str
) -> None:
    with pytest.raises(StateError) as caught:
        check_state(LINE, state_from_dict(data, "state.json"), "state.json")
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"state.json: {message}"), text


@pytest.mark.parametrize(
    "stations, message",
    [
        ({"pack": {"buffers": {"saw": 1}}}, "stations.pack.buffers: only an assembly"),
        ({"pack": {"transport": [{"remaining_s": 3}]}}, "stations.pack.transport: 'pack' has no transport"),
        ({"saw": {"returns": 2}}, "stations.saw.returns: no station sends parts back to 'saw' for rework"),
    ],
)
def test_a_chain_line_refuses_the_network_keys(stations: dict[str, Any], message: str) -> None:
    with pytest.raises(StateError, match=f"^state.json: {message}"):
        check_state(CHAIN, state_from_dict(state(stations), "state.json"), "state.json")


def test_a_chain_state_file_is_read_and_written_as_before() -> None:
    """The new keys are optional: a chain state says what it said, and writes what it wrote."""
    data = state({"pack": {"buffer": 0, "machines": [on("working", 3.0)], "produced": 5}}, released=9)
    read = state_from_dict(data)
    check_state(CHAIN, read)
    assert read.to_json() == data
    assert read.parts_in_line() == 1


# -- the snapshot round trip -----------------------------------------------------------------------
def comparable(snapshot: LineState) -> tuple[dict[str, Any], list[float]]:
    """A state's data without elapsed times and counts (what a restart keeps), and apart the
    remaining travel times of the parts on transports."""
    data = snapshot.to_json()
    remaining = []
    for station in data["stations"].values():
        station.pop("produced", None)
        for machine in station.get("machines", []):
            machine.pop("elapsed_s", None)
        for part in station.get("transport", []):
            remaining.append(part.pop("remaining_s"))
    return data, remaining


def check_conservation(model: LineModel) -> None:
    for product, counts in model.conservation().items():
        assert counts["released"] == counts["out"] + counts["scrapped"] + counts["wip"], product
    assert model.wip == len(model.parts_in_line())


def returned(model: LineModel) -> bool:
    """Whether a part sent back for rework waits in a rework queue."""
    return any(queue is not None and queue.items for queue in model.network.returns)  # type: ignore[union-attr]


def arrived(model: LineModel) -> bool:
    """Whether a part has arrived on a transport and waits for its buffer."""
    now = model.env.now
    return any(t is not None and any(due <= now for due in t.due) for t in model.network.transports)  # type: ignore[union-attr]


def instants(model: LineModel, count: int) -> Any:
    """Run `model` to `count` instants every 433.3 s, and after each to the first settled instants at
    which a part waits in a rework queue, and one has arrived on a transport (both are rare)."""
    env = model.env
    for k in range(1, count + 1):
        env.run(until=k * 433.3)
        yield
        for caught in (returned, arrived):
            while env.peek() < (k + 1) * 433.3:
                env.step()
                if caught(model):
                    env.run(until=env.now + 1e-7)  # past the moves of this instant
                    if caught(model):
                        yield
                        break


@pytest.mark.parametrize("which", ["cell", "assembly.yaml"])
@pytest.mark.parametrize("seed", [3, 8])
def test_a_snapshot_restarts_the_network_where_it_was(tmp_path: Path, which: str, seed: int) -> None:
    """snapshot -> file -> read -> check -> a model started from it holds the same parts in the same
    places and states, the same components in the assembled parts, and the conservation law holds
    from then on."""
    line = LINE if which == "cell" else load_line(ASSEMBLY)
    model = LineModel(line, seed)
    seen = {"transport": 0, "arrived": 0, "returns": 0, "buffers": 0, "blocked": 0}
    for _ in instants(model, 24):
        snapshot = model.snapshot()
        path = tmp_path / "state.json"
        path.write_text(json.dumps(snapshot.to_json()))
        again = read_state(path)
        assert again == snapshot
        check_state(line, again, str(path))
        assert again.parts_in_line() == model.wip
        restarted = LineModel(line, seed + 1, start=start_plan(line, again, seed + 1))
        assert restarted.wip == model.wip
        # a buffer's count has no products (they are drawn), so per product only the total and the
        # components, which only one product can be, are the same
        before, after = model.conservation(), restarted.conservation()
        assert sum(c["wip"] for c in after.values()) == sum(c["wip"] for c in before.values())
        component = "lid" if which == "cell" else "cover"
        assert after[component]["wip"] == before[component]["wip"] > 0
        check_conservation(restarted)
        restarted.env.run(until=1e-9)  # the zero-time moves at the start: none, the snapshot is settled
        (places, remaining), (places_before, remaining_before) = (
            comparable(restarted.snapshot()),
            comparable(snapshot),
        )
        assert places == places_before
        assert np.allclose(remaining, np.maximum(0, np.asarray(remaining_before) - 1e-9), rtol=0, atol=1e-12)
        for until in (60.0, 900.0):
            restarted.env.run(until=until)
            check_conservation(restarted)
        for station in snapshot.stations.values():
            seen["transport"] += len(station.transport or ())
            seen["arrived"] += sum(part.remaining_s == 0 for part in station.transport or ())
            seen["returns"] += station.returns or 0
            seen["buffers"] += sum((station.buffers or {}).values())
            seen["blocked"] += sum(machine.state == "blocked" for machine in station.machines or ())
    # the instants caught parts in every kind of place (in assembly.yaml packing's buffer is never
    # full, so no part that has arrived waits on the transport)
    assert all(count > 0 for kind, count in seen.items() if (kind, which) != ("arrived", "assembly.yaml")), (
        seen
    )


CLOCKWORK: dict[str, Any] = {
    "name": "clockwork-network",
    "products": [{"name": "base"}, {"name": "lid"}],
    "stations": [
        {"name": "cut", "cycle_time": 7.0},
        {"name": "bend", "cycle_time": 9.5, "buffer": 1},
        {"name": "press", "release": "saturated", "product": "lid", "cycle_time": 6.0},
        {"name": "join", "inputs": ["bend", "press"], "cycle_time": 17.0, "capacity": 2, "buffer": 1},
        {"name": "paint", "cycle_time": 8.25, "buffer": 2, "transport": {"time": 11.0, "capacity": 2}},
    ],
}


@pytest.mark.parametrize("release", ["saturated", {"conwip": 7}], ids=["saturated", "conwip"])
@pytest.mark.parametrize("instant", [10.0, 63.3, 400.05])
def test_with_constant_times_the_network_run_from_a_snapshot_is_the_same_run(
    release: Any, instant: float
) -> None:
    """Constant times leave nothing to chance: from the snapshot (machines' elapsed times, the
    remaining travel of the parts on the transport), the line makes its parts at the same instants."""
    line = line_from_dict({**CLOCKWORK, "release": release})
    end = 600.0
    whole = simulate(line, seed=1, horizon=end, warmup=0.0)
    model = LineModel(line, 1)
    model.env.run(until=instant)
    snapshot = model.snapshot()
    continued = simulate(line, seed=2, horizon=end - instant, warmup=0.0, state=snapshot)
    later = [t for t in whole.exit_times if t > instant]
    assert len(later) > 10
    assert np.allclose(np.asarray(continued.exit_times) + instant, later, rtol=0, atol=1e-9)


# -- the plan: where parts are, what they are -------------------------------------------------------
FULL = state(
    {
        "cut": {"machines": [on("down", 12.0)]},
        "drill": {"buffer": 3, "machines": [on("blocked", 3.0)]},
        "wash": {"buffer": 2, "machines": [on("down", 5.0)]},
        "press": {"machines": [on("blocked", 1.0)]},
        "join": {"buffers": {"wash": 3, "press": 3}, "machines": [on("working", 9.0), on("blocked", 2.0)]},
        "screw": {"buffer": 2, "returns": 3, "machines": [on("working", 4.0)]},
        "test": {"buffer": 2, "machines": [on("blocked", 1.5)]},
        "pack": {
            "buffer": 2,
            "transport": [{"remaining_s": 0.0}, {"elapsed_s": 30.0, "product": "B"}],
            "machines": [on("working", 2.0, product="A")],
        },
    }
)


def network_start(data: dict[str, Any], seed: int = 5) -> NetworkStart:
    plan = start_plan(LINE, state_from_dict(data), seed)
    assert plan.network is not None
    return plan.network


def test_parts_are_placed_where_their_products_can_be_with_their_components() -> None:
    names = [station.name for station in LINE.stations]
    at = {name: i for i, name in enumerate(names)}
    check_state(LINE, state_from_dict(FULL))
    seen: set[str] = set()
    for seed in range(20):
        start = network_start(FULL, seed)
        assert start.parts == state_from_dict(FULL).parts_in_line()
        wash = start.inputs[at["wash"]][0]
        assert {part.product for part in wash} == {"A"}
        assert all(part.position == 2 and part.came_from == at["drill"] for part in wash)
        base, lids = start.inputs[at["join"]]
        assert {part.product for part in lids} == {"lid"} and all(not part.components for part in base + lids)
        assert all(part.position == -1 for part in lids)  # the lid has no route
        for part in base:  # A from the wash, B straight from the drill
            seen.add(part.product)
            assert part.came_from == (at["wash"] if part.product == "A" else at["drill"])
            assert part.position == NETWORK["routes"][part.product].index("join")
        joined = [part for part in start.held[at["join"]] if part is not None]
        assert all(part.components == ("lid",) for part in joined)  # on the assembly's machine: joined
        for part in [*start.inputs[at["screw"]][0], *start.held[at["test"]], *start.returns[at["screw"]]]:
            assert part is not None and part.components == ("lid",) and part.product in ("A", "B")
        for part in start.returns[at["screw"]]:
            assert part.came_from == at["test"]  # sent back by the test
            assert part.position == NETWORK["routes"][part.product].index("screw")
        (first, arrived), (_, travelling) = start.transports[at["pack"]]
        assert first == 0.0 and arrived.product in ("A", "B") and travelling.product == "B"
        assert arrived.components == travelling.components == ("lid",)
    assert seen == {"A", "B"}


def test_a_routed_part_is_at_the_first_visit_of_its_station_where_it_can_be_there() -> None:
    """Route a, b, a, c from a saturated release: a part on a's machine is on its first visit (it
    goes to b next); a part in a's buffer has come back (a's own parts are made on its machine),
    so it is on its second visit and goes to c."""
    line = line_from_dict(
        {
            "name": "loop",
            "routes": {"P": ["a", "b", "a", "c"]},
            "products": [{"name": "P"}],
            "stations": [
                {"name": "a", "cycle_time": 5.0},
                {"name": "b", "cycle_time": 50.0, "buffer": 2},
                {"name": "c", "cycle_time": 50.0, "buffer": 2},
            ],
        }
    )
    data = state({"a": {"buffer": 1, "machines": [on("working", 1.0)]}})
    check_state(line, state_from_dict(data))
    plan = start_plan(line, state_from_dict(data), 1)
    assert plan.network is not None
    assert plan.network.held[0][0].position == 0  # type: ignore[union-attr]
    assert plan.network.inputs[0][0][0].position == 2
    model = LineModel(line, 1, start=plan)
    model.env.run(until=4.5)  # a's part (4 s left) has gone to b, and a has taken the part that came back
    assert [machine.part is not None for machines in model.machines for machine in machines] == [
        True,
        True,
        False,
    ]
    model.env.run(until=9.5)  # ... and sent that one on to c
    assert model.machines[2][0].part is not None


def test_a_blocked_machines_part_goes_on_and_is_not_reworked() -> None:
    """The test sends 999 parts in 1000 back; its blocked machine's part is finished: it goes to
    packing when packing takes it, and the rework queue stays empty."""
    line = line_from_dict(
        {
            "name": "gate",
            "stations": [
                {"name": "make", "cycle_time": 100.0},
                {
                    "name": "test",
                    "cycle_time": 10.0,
                    "buffer": 0,
                    "rework": {"probability": 0.999, "to": "test"},
                },
                {"name": "pack", "cycle_time": 10.0, "buffer": 0},
            ],
        }
    )
    data = state({"test": {"machines": [on("blocked")]}, "pack": {"machines": [on("working", 4.0)]}})
    model = LineModel(line, 1, start=start_plan(line, state_from_dict(data), 1))
    model.env.run(until=7.0)
    snapshot = model.snapshot()
    assert snapshot.stations["test"].returns == 0
    assert [snapshot.stations[name].machines[0].state for name in ("test", "pack")] == ["starved", "working"]  # type: ignore[index]
    assert model.exits == 1


def test_a_state_that_differs_at_one_place_leaves_the_other_places_draws_alone() -> None:
    changed = json.loads(json.dumps(FULL))
    changed["stations"]["screw"]["buffer"] = 1
    changed["stations"]["join"]["buffers"]["wash"] = 2
    one, other = network_start(FULL), network_start(changed)
    for i, name in enumerate(station.name for station in LINE.stations):
        if name not in ("screw", "join"):
            assert one.inputs[i] == other.inputs[i], name
            assert one.transports[i] == other.transports[i], name
        assert one.held[i] == other.held[i], name
        assert one.returns[i] == other.returns[i], name
    assert one.inputs[5][0][:1] == other.inputs[5][0]  # the screw's front part is the same part
    plan_one = start_plan(LINE, state_from_dict(FULL), 5)
    plan_other = start_plan(LINE, state_from_dict(changed), 5)
    assert plan_one.machines == plan_other.machines  # the residual times too


def test_a_run_from_a_full_state_keeps_the_conservation_law() -> None:
    for seed in (1, 2, 3):
        model = LineModel(LINE, seed, start=start_plan(LINE, state_from_dict(FULL), seed))
        check_conservation(model)
        for until in (1e-9, 1.0, 30.0, 120.0, 900.0, 3600.0):
            model.env.run(until=until)
            check_conservation(model)
        assert model.exits > 50

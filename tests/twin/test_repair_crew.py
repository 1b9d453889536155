"""A repair crew against the machine-repairman model (M/M/c//N), and the crew's rules.

N machines in one station, saturated release, so each machine works whenever it is up; each
fails after an exponential operating (or calendar) time and is repaired in an exponential time
by one of c technicians, first come first served. The long-run shares of the machines' time
working, down (under repair) and waiting for a technician are those of the finite-source queue
(tests/twin/exact/queueing.py `machine_repairman`); the twin's replications must cover each
within their 99.9 % Student-t interval, as in tests/twin/test_theory.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.parallel import replications
from tests.twin.exact.queueing import machine_repairman
from tests.twin.test_theory import assert_covers
from twin.engine import LineModel, simulate
from twin.flow import flow_obstacle
from twin.line import Line, line_from_dict
from twin.repair import Crew
from twin.state import LineState, MachineState, StationState, start_plan
from twin.station import DOWN, STATE_NAMES, WAITING_REPAIR, WORKING

MTBF, MTTR = 100.0, 50.0
REPLICATIONS = 20
HORIZON = 80_000.0
WARMUP = 1_000.0


def repairman_line(machines: int, technicians: int, basis: str = "operating") -> Line:
    return line_from_dict(
        {
            "name": "repairman",
            "repair": {"technicians": technicians},
            "horizon": HORIZON,
            "warmup": WARMUP,
            "stations": [
                {
                    "name": "cell",
                    "capacity": machines,
                    "cycle_time": {"dist": "constant", "value": 40.0},
                    "failures": {"mtbf": MTBF, "mttr": MTTR, "basis": basis},
                }
            ],
        }
    )


def one_run(machines: int, technicians: int, basis: str, seed: int) -> dict[str, float]:
    shares = simulate(repairman_line(machines, technicians, basis), seed=seed).kpis["stations"]["cell"]
    return {name: shares[name] for name in ("working", "down", "waiting_repair", "availability")}


# -- the reference --------------------------------------------------------------------------------
def test_the_closed_form_by_hand() -> None:
    # N = 4, c = 1, r = 1/2: weights 1, 2, 3, 3, 3/2 (sum 21/2)
    exact = machine_repairman(4, 1, 1 / MTBF, 1 / MTTR)
    assert exact.working == pytest.approx(19 / 42, abs=1e-15)
    assert exact.under_repair == pytest.approx(9.5 / 42, abs=1e-15)
    assert exact.waiting == pytest.approx(13.5 / 42, abs=1e-15)


@pytest.mark.parametrize(("machines", "technicians"), [(4, 1), (4, 2), (6, 2), (5, 5)])
def test_the_closed_form_solves_the_birth_death_chain(machines: int, technicians: int) -> None:
    lam, mu = 1 / MTBF, 1 / MTTR
    generator = np.zeros((machines + 1, machines + 1))
    for n in range(machines + 1):
        if n < machines:
            generator[n, n + 1] = (machines - n) * lam
        if n > 0:
            generator[n, n - 1] = min(n, technicians) * mu
        generator[n, n] = -generator[n].sum()
    system = np.vstack([generator.T, np.ones(machines + 1)])
    pi = np.linalg.lstsq(system, np.r_[np.zeros(machines + 1), 1.0], rcond=None)[0]
    exact = machine_repairman(machines, technicians, lam, mu)
    np.testing.assert_allclose(exact.probabilities, pi, atol=1e-12)


# -- the twin against it -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("machines", "technicians", "basis"),
    [(4, 1, "operating"), (4, 2, "operating"), (6, 2, "operating"), (4, 2, "calendar")],
)
def test_the_twin_matches_the_machine_repairman_model(machines: int, technicians: int, basis: str) -> None:
    exact = machine_repairman(machines, technicians, 1 / MTBF, 1 / MTTR)
    first = 1000 * machines + 100 * technicians + 50 * (basis == "calendar")
    seeds = [first + k for k in range(REPLICATIONS)]
    runs = replications(one_run, [(machines, technicians, basis, seed) for seed in seeds])
    assert_covers(runs, "working", exact.working)
    assert_covers(runs, "down", exact.under_repair)
    assert_covers(runs, "waiting_repair", exact.waiting)
    assert_covers(runs, "availability", exact.working)


# -- the crew's rules --------------------------------------------------------------------------------
def test_without_a_crew_nothing_waits_and_the_flow_engine_refuses_a_crew() -> None:
    line = repairman_line(4, 1).model_copy(update={"repair": None})
    assert (
        simulate(line, seed=3, horizon=5000.0, warmup=0.0).kpis["stations"]["cell"]["waiting_repair"] == 0.0
    )
    chain = line_from_dict(
        {
            "repair": {"technicians": 1},
            "stations": [{"name": "a", "cycle_time": {"dist": "constant", "value": 1}}],
        }
    )
    assert (
        flow_obstacle(chain)
        == "repair: a repair crew (machines waiting for a technician) needs the event engine"
    )


def _stub(station: int, working: float) -> SimpleNamespace:
    machine = SimpleNamespace(station_index=station, state=DOWN, since=0.0, time_in=[0.0] * len(STATE_NAMES))
    machine.time_in[WORKING] = working
    return machine


def test_bottleneck_first_serves_the_busiest_station_then_the_first_to_fail() -> None:
    import simpy

    env = simpy.Environment()
    busy, idle, busy_too = _stub(1, 300.0), _stub(0, 100.0), _stub(2, 300.0)
    model = SimpleNamespace(machines=[[idle], [busy], [busy_too]])
    for machine in (busy, idle, busy_too):
        machine.model = model
    for priority, order in (("bottleneck", [busy, busy_too, idle]), ("fifo", [idle, busy, busy_too])):
        crew = Crew(env, 1, priority)  # type: ignore[arg-type]
        assert crew.call(_stub(0, 0.0)) is None  # the only technician is taken
        events = {id(m): crew.call(m) for m in (idle, busy, busy_too)}  # type: ignore[arg-type]
        served = []
        for _ in range(3):
            crew.release()
            served.extend(m for m in (idle, busy, busy_too) if events[id(m)].triggered and m not in served)
        assert served == order, priority


def test_a_waiting_machine_is_saved_as_down_not_yet_repaired_and_a_down_start_takes_a_technician() -> None:
    line = repairman_line(4, 1)
    model = LineModel(line, 5)
    while not any(m.state == WAITING_REPAIR for m in model.machines[0]):
        model.env.step()
    machines = model.snapshot().stations["cell"].machines
    assert machines is not None
    waiting = [
        m for m, machine in zip(machines, model.machines[0], strict=True) if machine.state == WAITING_REPAIR
    ]
    assert waiting and all(m.state == "down" and m.elapsed_s == 0.0 for m in waiting)
    # three machines down at the start, one technician: two wait for him
    state = LineState(
        format="fabbrica-state/1",
        stations={
            "cell": StationState(machines=[*[MachineState(state="down")] * 3, MachineState(state="starved")])
        },
    )
    start = LineModel(line, 5, start=start_plan(line, state, 5))
    start.env.run(until=1e-9)
    assert sorted(m.state for m in start.machines[0]) == [WORKING, DOWN, WAITING_REPAIR, WAITING_REPAIR]


# -- technicians per skill -----------------------------------------------------------------------------
def skilled_run(split: bool, seed: int) -> dict[str, float]:
    """Two stations of three machines, failing on calendar time (whatever the flow does): with a
    mechanic for one and an electrician for the other, each is its own M/M/1//3 queue."""
    repair: dict[str, object] = {"technicians": 2}
    if split:
        repair["skills"] = {"mechanical": 1, "electrical": 1}
    stations = []
    for name, skill in (("press", "mechanical"), ("oven", "electrical")):
        failures: dict[str, object] = {"mtbf": MTBF, "mttr": MTTR, "basis": "calendar"}
        if split:
            failures["skill"] = skill
        stations.append(
            {
                "name": name,
                "capacity": 3,
                "cycle_time": {"dist": "constant", "value": 40.0},
                "failures": failures,
            }
        )
    line = line_from_dict({"repair": repair, "horizon": HORIZON, "warmup": WARMUP, "stations": stations})
    kpis = simulate(line, seed=seed).kpis["stations"]
    return {
        f"{name}.{share}": kpis[name][share]
        for name in ("press", "oven")
        for share in ("down", "waiting_repair")
    }


def test_technicians_per_skill_repair_only_their_trade() -> None:
    per_trade = machine_repairman(3, 1, 1 / MTBF, 1 / MTTR)
    runs = replications(skilled_run, [(True, 8_000 + k) for k in range(REPLICATIONS)])
    for name in ("press", "oven"):
        assert_covers(runs, f"{name}.down", per_trade.under_repair)
        assert_covers(runs, f"{name}.waiting_repair", per_trade.waiting)
    # one crew of two for the six machines is the M/M/2//6 queue: less waiting than split by trade
    pooled = machine_repairman(6, 2, 1 / MTBF, 1 / MTTR)
    assert pooled.waiting < per_trade.waiting
    runs = replications(skilled_run, [(False, 8_100 + k) for k in range(REPLICATIONS)])
    for name in ("press", "oven"):
        assert_covers(runs, f"{name}.waiting_repair", pooled.waiting)


@pytest.mark.parametrize(
    ("repair", "failures", "message"),
    [
        (
            {"technicians": 2, "skills": {"mechanical": 1}},
            {},
            r"repair\.skills: the technicians per skill add up to 1",
        ),
        (
            {"technicians": 1},
            {"skill": "mechanical"},
            r"stations\[0\]\.failures\.skill: needs repair\.skills",
        ),
        (
            {"technicians": 1, "skills": {"mechanical": 1}},
            {},
            r"stations\[0\]\.failures\.skill: the crew has skills",
        ),
        (
            {"technicians": 1, "skills": {"mechanical": 1}},
            {"skill": "hydraulic"},
            r"stations\[0\]\.failures\.skill: unknown skill 'hydraulic'",
        ),
    ],
)
def test_bad_skills_are_one_line_naming_the_field(
    repair: dict[str, object], failures: dict[str, object], message: str
) -> None:
    from twin.line import LineError

    data = {
        "repair": repair,
        "stations": [
            {
                "name": "a",
                "cycle_time": {"dist": "constant", "value": 1},
                "failures": {"mtbf": 9, "mttr": 1, **failures},
            }
        ],
    }
    with pytest.raises(LineError, match=message):
        line_from_dict(data)

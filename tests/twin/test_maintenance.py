"""Preventive maintenance in the twin against the age-replacement policy (tests/twin/exact/maintenance.py).

One machine, saturated and the last station, so it is never starved or blocked: it works except
while it is repaired or serviced, and its age is its working time. Serviced at age T (the part in
work waits) or repaired at a failure, whichever comes first, it renews: the renewal-reward
theorem gives the long-run working share A(T) and cost rate C(T) (preventive cost c_p per
service, c_f per failure) exactly. The twin's replications must cover both within their 99.9 %
Student-t interval, and the twin must show what the theory says: with Weibull wear-out (shape 3)
the cost per part has an interior optimum; with exponential failures (memoryless) servicing
only costs.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.parallel import replications
from tests.twin.exact.maintenance import availability, cost_rate, optimal_age
from tests.twin.test_theory import assert_covers, confidence_interval
from twin.engine import simulate
from twin.flow import flow_obstacle
from twin.line import LineError, line_from_dict

SCALE = 1000.0  # Weibull scale of the time to failure (operating seconds)
D_P, D_F = 20.0, 100.0  # mean service and repair times
C_P, C_F = 1.0, 10.0  # cost of a service and of a failure
CYCLE = 50.0
HORIZON, WARMUP = 200_000.0, 5_000.0
REPLICATIONS = 20


def machine(shape: float, every: float | None, horizon: float = HORIZON) -> dict[str, Any]:
    station: dict[str, Any] = {
        "name": "press",
        "cycle_time": {"dist": "constant", "value": CYCLE},
        "failures": {
            "ttf": {"dist": "weibull", "shape": shape, "scale": SCALE},
            "ttr": {"dist": "exponential", "mean": D_F},
        },
    }
    if every is not None:
        station["maintenance"] = {"every": every, "duration": {"dist": "constant", "value": D_P}}
    return {"name": "age", "horizon": horizon, "warmup": WARMUP, "stations": [station]}


def one_run(shape: float, every: float | None, seed: int) -> dict[str, float]:
    record = simulate(line_from_dict(machine(shape, every)), seed=seed).kpis
    press = record["stations"]["press"]
    period = record["horizon_s"] - record["warmup_s"]
    cost = C_P * press["services"] + C_F * press["failures"]
    return {
        "working": press["working"],
        "maintenance": press["maintenance"],
        "cost_rate": cost / period,
        "cost_per_part": cost / press["parts_out"],
    }


def runs(shape: float, every: float | None, first_seed: int) -> list[dict[str, float]]:
    return replications(one_run, [(shape, every, first_seed + k) for k in range(REPLICATIONS)])


def exact_cost_per_part(age: float, shape: float) -> float:
    """C(T) per part: the cost rate over the parts per second, A(T) / cycle time."""
    return (
        cost_rate(age, shape, SCALE, C_P, C_F, D_P, D_F) * CYCLE / availability(age, shape, SCALE, D_P, D_F)
    )


def paired_difference(first: list[dict[str, float]], second: list[dict[str, float]], measure: str) -> Any:
    """The interval of first - second, run by run (the same seeds: common random numbers)."""
    return confidence_interval([a[measure] - b[measure] for a, b in zip(first, second, strict=True)])


@pytest.mark.parametrize(("shape", "every"), [(3.0, 300.0), (3.0, 600.0), (3.0, None), (1.0, 300.0)])
def test_the_twin_matches_the_age_replacement_policy(shape: float, every: float | None) -> None:
    age = math.inf if every is None else every
    found = runs(shape, every, 7_000 + int(shape) * 100 + int(every or 0))
    assert_covers(found, "working", availability(age, shape, SCALE, D_P, D_F))
    assert_covers(found, "cost_rate", cost_rate(age, shape, SCALE, C_P, C_F, D_P, D_F))
    if every is None:
        assert all(run["maintenance"] == 0.0 for run in found)


def test_with_wear_out_the_cost_per_part_has_an_interior_optimum() -> None:
    best = optimal_age(3.0, SCALE, C_P, C_F, D_P, D_F)
    assert best.interior and 0.2 * SCALE < best.age < SCALE
    too_often, best_runs, never = (runs(3.0, every, 9_100) for every in (best.age / 4, best.age, None))
    # the theory: servicing at T* beats servicing four times as often and never servicing
    assert exact_cost_per_part(best.age, 3.0) < exact_cost_per_part(best.age / 4, 3.0)
    assert exact_cost_per_part(best.age, 3.0) < exact_cost_per_part(math.inf, 3.0)
    # the twin shows it: both differences are positive with 99.9 % confidence
    for other in (too_often, never):
        difference = paired_difference(other, best_runs, "cost_per_part")
        assert difference.mean - difference.half_width > 0, difference


def test_with_exponential_failures_servicing_only_costs() -> None:
    assert not optimal_age(1.0, SCALE, C_P, C_F, D_P, D_F).interior
    serviced, never = runs(1.0, 300.0, 9_500), runs(1.0, None, 9_500)
    difference = paired_difference(serviced, never, "cost_per_part")
    assert difference.mean - difference.half_width > 0, difference
    difference = paired_difference(never, serviced, "working")
    assert difference.mean - difference.half_width > 0, difference


def test_a_service_every_so_many_parts_takes_its_share_exactly() -> None:
    """Constant times, no failures: every 100 parts of 10 s, a 50 s service: 50 / 1050 of the time."""
    line = line_from_dict(
        {
            "horizon": 105_000.0,
            "stations": [
                {
                    "name": "mill",
                    "cycle_time": {"dist": "constant", "value": 10.0},
                    "maintenance": {"parts": 100, "duration": {"dist": "constant", "value": 50.0}},
                    "power": {"working": 4.0, "down": 1.0},
                }
            ],
        }
    )
    mill = simulate(line, seed=1).kpis["stations"]["mill"]
    # a cycle of 100 parts and a service is 1050 s: 100 cycles, the last service ends with the run
    assert mill["services"] == 100
    assert mill["maintenance"] == pytest.approx(100 * 50.0 / 105_000.0, rel=1e-12)
    assert mill["parts_out"] == 10_000
    # maintenance is planned downtime (ISO 22400-2): the machine is fully available otherwise
    assert mill["availability"] == 1.0
    assert mill["energy_kwh"] == pytest.approx(
        (4.0 * mill["working"] + 1.0 * mill["maintenance"]) * 105_000 / 3600
    )


def test_bad_maintenance_is_one_line_naming_the_field() -> None:
    base = machine(3.0, 300.0)
    base["stations"][0]["maintenance"]["parts"] = 10
    with pytest.raises(LineError, match=r"stations\[0\]\.maintenance: .*exactly one of every"):
        line_from_dict(base)
    calendar = machine(3.0, 300.0)
    calendar["stations"][0]["failures"]["basis"] = "calendar"
    with pytest.raises(LineError, match=r"stations\[0\]\.maintenance: .*failures.basis: operating"):
        line_from_dict(calendar)
    assert flow_obstacle(line_from_dict(machine(3.0, 300.0))) == (
        "stations[0].maintenance: preventive maintenance needs the event engine"
    )

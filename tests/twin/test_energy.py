"""Energy: for every station, energy = Σ over states of power × machine time in the state, exactly.

The record's `energy_kwh` of each station is checked against its own state shares × the observed
period × the machines (to floating-point rounding), on both engines, on a chain with set-ups,
failures and blocking, and on a line with a repair crew (waiting for repair at the `down` power).
"""

from __future__ import annotations

from typing import Any

import pytest

from twin.engine import simulate
from twin.flow import simulate_flow
from twin.line import Line, line_from_dict

POWER = {
    "cut": {"working": 5.5, "idle": 1.2, "down": 0.3, "setup": 2.0},
    "weld": {"working": 12.0, "idle": 2.5, "down": 0.8, "setup": 4.0},
    "test": {"working": 1.5},  # idle, down and set-up draw nothing
}
KEY = {"working": "working", "blocked": "idle", "starved": "idle", "down": "down", "waiting_repair": "down"}


def chain(**extra: Any) -> Line:
    return line_from_dict(
        {
            "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}],
            "horizon": "6h",
            "warmup": "30min",
            **extra,
            "stations": [
                {
                    "name": "cut",
                    "cycle_time": {"dist": "lognormal", "mean": 50, "cv": 0.3},
                    "setup": "3min",
                    "failures": {"mtbf": "1h", "mttr": "8min"},
                    "power": POWER["cut"],
                },
                {
                    "name": "weld",
                    "buffer": 2,
                    "cycle_time": {"dist": "exponential", "mean": 55},
                    "failures": {"mtbf": "40min", "mttr": "10min"},
                    "power": POWER["weld"],
                },
                {"name": "test", "buffer": 1, "cycle_time": 45, "scrap": 0.02, "power": POWER["test"]},
            ],
        }
    )


def expected_kwh(station: str, shares: dict[str, float], period: float, machines: int = 1) -> float:
    power = {"idle": 0.0, "down": 0.0, "setup": 0.0, **POWER[station]}
    kw = {state: power[KEY.get(state, state)] for state in (*KEY, "setup")}
    return sum(kw[state] * shares[state] for state in kw) * period * machines / 3600.0


def check(record: dict[str, Any]) -> None:
    period = record["horizon_s"] - record["warmup_s"]
    total = 0.0
    for name, values in record["stations"].items():
        assert values["energy_kwh"] == pytest.approx(expected_kwh(name, values, period), rel=1e-12, abs=1e-12)
        total += values["energy_kwh"]
    assert record["energy_kwh"] == pytest.approx(total, rel=1e-15)
    assert record["energy_per_good_part_kwh"] == pytest.approx(total / record["parts_out"], rel=1e-15)
    assert record["stations"]["weld"]["energy_kwh"] > 0 and record["parts_out"] > 0


@pytest.mark.parametrize("engine", ["simpy", "flow"])
def test_energy_is_power_times_time_in_each_state(engine: str) -> None:
    run = simulate if engine == "simpy" else simulate_flow
    record = run(chain(), seed=4).kpis
    assert record["engine"] == engine
    check(record)


def test_the_two_engines_agree_on_the_energy() -> None:
    assert simulate(chain(), seed=7).kpis["energy_kwh"] == pytest.approx(
        simulate_flow(chain(), seed=7).kpis["energy_kwh"], rel=1e-9
    )


def test_waiting_for_repair_draws_the_down_power() -> None:
    record = simulate(chain(repair={"technicians": 1}), seed=1).kpis
    assert any(values["waiting_repair"] > 0 for values in record["stations"].values())
    check(record)


def test_a_line_without_power_uses_no_energy() -> None:
    line = chain().model_copy(
        update={"stations": [s.model_copy(update={"power": None}) for s in chain().stations]}
    )
    record = simulate(line, seed=1).kpis
    assert record["energy_kwh"] == 0.0 and all(v["energy_kwh"] == 0.0 for v in record["stations"].values())

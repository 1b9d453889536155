"""Switching idle machines off, against the M/G/1 queue with an exceptional first service.

One machine fed by Poisson orders (rate λ), constant processing time S, unlimited buffer. Each
idle period of the M/G/1 queue is exponential(λ); the machine switches off once it has been idle
for a, so with probability p = e^(-λa) the idle period ends with the machine off, and the next
part waits for the restart R before its processing (an exceptional first service S + pR on
average). A cycle is an idle period and a busy period, of mean 1/λ + (S + pR)/(1 - ρ), so the
long-run shares are exact:

    off = (p/λ) / C,   starved = ((1 - p)/λ) / C,   setup (restart) = pR / C,   working = ρ,

and the energy is Σ power × share × T. The twin's replications must cover each within their
99.9 % Student-t interval; and against the same line kept warm it must show the trade-off the
issue asks for: less energy per part, a longer lead time.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.parallel import replications
from tests.twin.test_theory import assert_covers, confidence_interval
from twin.engine import LineModel, simulate
from twin.line import line_from_dict
from twin.station import STATE_NAMES

MEAN_ARRIVAL, SERVICE, RESTART, AFTER = 100.0, 60.0, 30.0, 50.0
POWER = {"working": 5.0, "idle": 1.0, "setup": 3.0, "off": 0.1}
HORIZON, WARMUP = 400_000.0, 5_000.0
REPLICATIONS = 20


def line_data(after: float | None) -> dict[str, Any]:
    station: dict[str, Any] = {
        "name": "oven",
        "cycle_time": {"dist": "constant", "value": SERVICE},
        "power": POWER,
    }
    if after is not None:
        station["switch_off"] = {"after": after, "restart": {"dist": "constant", "value": RESTART}}
    return {
        "name": "switch-off",
        "release": {"interarrival": {"dist": "exponential", "mean": MEAN_ARRIVAL}},
        "horizon": HORIZON,
        "warmup": WARMUP,
        "stations": [station],
    }


def exact_shares(after: float) -> dict[str, float]:
    rate = 1 / MEAN_ARRIVAL
    rho = rate * SERVICE
    off = math.exp(-rate * after)
    cycle = 1 / rate + (SERVICE + off * RESTART) / (1 - rho)
    return {
        "working": rho,
        "off": off / rate / cycle,
        "starved": (1 - off) / rate / cycle,
        "setup": off * RESTART / cycle,
    }


def one_run(after: float | None, seed: int) -> dict[str, float]:
    record = simulate(line_from_dict(line_data(after)), seed=seed).kpis
    oven = record["stations"]["oven"]
    return {
        **{name: oven[name] for name in ("working", "off", "starved", "setup")},
        "power_kw": record["energy_kwh"] * 3600.0 / (record["horizon_s"] - record["warmup_s"]),
        "energy_per_part": record["energy_per_good_part_kwh"],
        "lead_time": record["lead_time_mean_s"],
    }


@pytest.mark.parametrize("after", [0.0, 50.0, 200.0])
def test_the_shares_are_those_of_the_queue_with_an_exceptional_first_service(after: float) -> None:
    found = replications(one_run, [(after, 4_000 + int(after) + k) for k in range(REPLICATIONS)])
    exact = exact_shares(after)
    for name, share in exact.items():
        assert_covers(found, name, share)
    assert_covers(found, "power_kw", sum(POWER[key] * exact[name] for name, key in _POWER_OF.items()))


_POWER_OF = {"working": "working", "off": "off", "starved": "idle", "setup": "setup"}


def test_switching_off_trades_lead_time_for_energy() -> None:
    seeds = [(4_500 + k) for k in range(REPLICATIONS)]
    kept_warm = replications(one_run, [(None, seed) for seed in seeds])
    switched = replications(one_run, [(AFTER, seed) for seed in seeds])
    saving = confidence_interval(
        [a["energy_per_part"] - b["energy_per_part"] for a, b in zip(kept_warm, switched, strict=True)]
    )
    assert saving.mean - saving.half_width > 0, saving
    delay = confidence_interval(
        [b["lead_time"] - a["lead_time"] for a, b in zip(kept_warm, switched, strict=True)]
    )
    assert delay.mean - delay.half_width > 0, delay
    assert all(run["off"] == 0.0 and run["setup"] == 0.0 for run in kept_warm)


def test_a_machine_switches_off_after_the_delay_and_restarts_for_the_next_part() -> None:
    """Orders every 100 s exactly, 60 s of work: 40 s idle each time; off after 30 s, restart 30 s."""
    data = line_data(30.0)
    data["release"] = {"interarrival": {"dist": "constant", "value": 100.0}}
    data["warmup"] = 0.0
    model = LineModel(line_from_dict(data), 1)
    seen: list[tuple[float, str]] = []
    machine = model.machines[0][0]
    enter = machine._enter

    def recording(state: int) -> None:
        enter(state)
        seen.append((model.env.now, STATE_NAMES[state]))

    machine._enter = recording  # type: ignore[method-assign]
    model.env.run(until=450.0)
    # the first order at 100 s: starved 0-30 s, off 30-100 s, restart 100-130 s, work 130-190 s;
    # the next order at 200 s finds it starved for 10 s (less than 30 s): no restart
    assert seen[:6] == [
        (0.0, "starved"),
        (30.0, "off"),
        (100.0, "setup"),
        (130.0, "working"),
        (190.0, "starved"),
        (200.0, "working"),
    ]

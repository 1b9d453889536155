"""The release's setpoints while the line runs: the mean time between orders, hold, the CONWIP limit.

Written by an operator or by the twin's advice through the virtual PLC's `Release` object, each
applies from the instant it is written: the next interval is drawn at the new mean, a held
release lets no order in, and a CONWIP line fills up to a higher limit at once and releases
nothing under a lower one until enough parts have left.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.parallel import replications
from tests.twin.test_theory import assert_covers
from twin.engine import LineModel
from twin.line import line_from_dict


class Releases:
    """An observer that notes each release instant."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def part_released(self, now: float) -> None:
        self.times.append(now)

    def machine_state(self, machine: Any, state: int, now: float) -> None:
        pass

    def part_finished(self, machine: Any, part: Any, cycle_time: float, scrapped: bool, now: float) -> None:
        pass


def line(release: dict[str, Any], cycle: float = 10.0) -> Any:
    return line_from_dict(
        {
            "release": release,
            "stations": [{"name": "cell", "cycle_time": {"dist": "constant", "value": cycle}}],
        }
    )


def test_a_new_mean_applies_from_the_next_order() -> None:
    seen = Releases()
    model = LineModel(line({"interarrival": {"dist": "constant", "value": 100.0}}), 1, observer=seen)
    model.env.run(until=1000.5)  # orders at 100, ..., 1000
    model.set_interarrival_mean(40.0)
    model.env.run(until=1200.5)  # the interval drawn at 1000 runs out at 1100; then every 40 s
    assert seen.times == [100.0 * k for k in range(1, 12)] + [1140.0, 1180.0]
    assert model.release_control.interarrival_mean == 40.0


def test_a_held_release_lets_no_order_in_and_starts_afresh_at_the_resume() -> None:
    seen = Releases()
    model = LineModel(line({"interarrival": {"dist": "constant", "value": 100.0}}), 1, observer=seen)
    model.env.run(until=450.0)
    model.hold_release(True)
    model.env.run(until=720.0)  # the order due at 500 waits for the resume, and is not made up
    assert seen.times == [100.0, 200.0, 300.0, 400.0]
    model.hold_release(False)
    model.env.run(until=1000.0)
    assert seen.times == [100.0, 200.0, 300.0, 400.0, 820.0, 920.0]


def test_a_conwip_limit_raised_fills_at_once_and_one_lowered_waits_for_parts_to_leave() -> None:
    model = LineModel(line({"conwip": 3}, cycle=10.0), 1)
    model.env.run(until=55.0)
    assert model.wip == 3
    model.set_conwip_limit(6)
    assert model.wip == 6
    model.set_conwip_limit(2)
    exits = model.exits
    model.env.run(until=55.0 + 10.0 * 4 + 1)  # four more exits: wip falls to 2 and stays
    assert model.exits - exits == 4 and model.wip == 2
    model.hold_release(True)
    model.env.run(until=200.0)
    assert model.wip == 0  # held: the parts leave, none come in
    model.hold_release(False)
    assert model.wip == 2


def test_refused_setpoints() -> None:
    conwip = LineModel(line({"conwip": 3}), 1)
    with pytest.raises(ValueError, match="not interarrival"):
        conwip.set_interarrival_mean(10.0)
    with pytest.raises(ValueError, match=">= 1"):
        conwip.set_conwip_limit(0)
    orders = LineModel(line({"interarrival": {"dist": "exponential", "mean": 50.0}}), 1)
    with pytest.raises(ValueError, match="not conwip"):
        orders.set_conwip_limit(4)
    with pytest.raises(ValueError, match="> 0"):
        orders.set_interarrival_mean(0.0)


def poisson_window(seed: int) -> dict[str, float]:
    """Orders over 20,000 s at mean 50 s, then 20,000 s at the new mean 25 s."""
    seen = Releases()
    model = LineModel(
        line({"interarrival": {"dist": "exponential", "mean": 50.0}}, cycle=1.0), seed, observer=seen
    )
    model.env.run(until=20_000.0)
    before = len(seen.times)
    model.set_interarrival_mean(25.0)
    model.env.run(until=40_000.0)
    return {"before": before / 20_000.0, "after": (len(seen.times) - before) / 20_000.0}


def test_the_rate_of_orders_follows_the_mean_set() -> None:
    runs = replications(poisson_window, [(seed,) for seed in range(20)])
    assert_covers(runs, "before", 1 / 50.0)
    assert_covers(runs, "after", 1 / 25.0)

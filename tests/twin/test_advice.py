"""The twin's advice against a case whose answer is known exactly, and its rules.

A CONWIP line of three exponential single-machine stations with unlimited buffers is a closed
Jackson network: mean value analysis gives its throughput X(N) and cycle time for each limit N
exactly. Asked for the least lead time with a throughput of at least X*, where X(3) < X* < X(4),
the advice must set the limit to 4: the fewest parts that meet the throughput, since the cycle
time grows with N. Its candidates' throughputs must cover X(N) within their 99.9 % intervals.
The rules: no action when the gain is not significant, an action that restores the constraints
when doing nothing breaks them, every candidate paired with doing nothing on the same seeds.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from twin.advice import Constraint, Objective, advise, choose, grid
from twin.experiments.stats import estimate
from twin.line import Line, line_from_dict
from twin.setpoints import Limits, SetpointError
from twin.state import LineState, StationState

MEANS = (40.0, 60.0, 45.0)  # the stations' mean cycle times: the second is the bottleneck


def mva(limit: int, means: tuple[float, ...] = MEANS) -> tuple[float, float]:
    """Throughput (parts/s) and cycle time (s) of the closed network of single exponential servers."""
    queue = [0.0] * len(means)
    throughput = cycle = 0.0
    for n in range(1, limit + 1):
        residence = [mean * (1 + q) for mean, q in zip(means, queue, strict=True)]
        cycle = sum(residence)
        throughput = n / cycle
        queue = [throughput * r for r in residence]
    return throughput, cycle


def conwip_line(limit: int) -> Line:
    return line_from_dict(
        {
            "name": "conwip",
            "release": {"conwip": limit},
            "stations": [
                {"name": name, "cycle_time": {"dist": "exponential", "mean": mean}}
                for name, mean in zip(("cut", "weld", "pack"), MEANS, strict=True)
            ],
        }
    )


def test_mean_value_analysis_by_hand() -> None:
    # one part: it visits each station alone, X(1) = 1 / sum of the means
    assert mva(1) == pytest.approx((1 / sum(MEANS), sum(MEANS)))
    # many parts: the bottleneck's rate
    assert mva(200)[0] == pytest.approx(1 / max(MEANS), rel=1e-3)


def test_the_advice_sets_the_fewest_parts_that_meet_the_throughput() -> None:
    line = conwip_line(2)
    target = (mva(3)[0] + mva(4)[0]) / 2 * 3600  # parts/h, between X(3) and X(4)
    state = LineState(format="fabbrica-state/1", stations={"cut": StationState(buffer=2)})
    actions = grid(line, {"release.conwip": [2, 3, 4, 5, 6, 8]}, current={"release.conwip": 2})
    assert actions[0] == {} and {"release.conwip": 2} not in actions  # the current limit is doing nothing
    objective = Objective("lead_time_mean_s", "minimize", (Constraint("throughput_per_hour", ">=", target),))
    advice = advise(
        line, state, actions=actions, objective=objective, horizon=100_000.0, replications=10, seed=5
    )
    assert advice.action == {"release.conwip": 4}, advice.reason
    assert advice.reason.startswith("doing nothing breaks the constraints")
    for candidate in advice.candidates[1:]:
        limit = candidate.action["release.conwip"]
        throughput = estimate([value / 3600 for value in candidate.values["throughput_per_hour"]])
        assert abs(throughput.mean - mva(limit)[0]) <= throughput.ci95 * 3.29 / 1.96 + 2e-6, limit
    record = advice.to_json(applied=False)
    assert set(record) >= {"state_time", "objective", "action", "gain", "candidates", "applied"}
    assert record["objective"] == f"minimize lead_time_mean_s subject to throughput_per_hour >= {target:g}"
    assert record["candidates"][0]["action"] == {} and "lead_time_mean_s" in record["candidates"][0]["kpis"]


def test_no_action_when_the_gain_is_not_worth_it() -> None:
    line = line_from_dict(
        {
            "release": {"interarrival": {"dist": "exponential", "mean": 100.0}},
            "stations": [{"name": "cell", "cycle_time": {"dist": "exponential", "mean": 50.0}}],
        }
    )
    state = LineState(format="fabbrica-state/1")
    # a mean 0.01 % longer: on common random numbers every run has a little less WIP, so the gain
    # is real and significant; it is not worth a change of 0.1 part
    actions = grid(line, {"release.interarrival.mean": [100.01]})
    runs = {"horizon": 20_000.0, "replications": 10, "seed": 1}
    significant = advise(line, state, actions=actions, objective=Objective("wip_mean"), **runs)  # type: ignore[arg-type]
    assert significant.action == {"release.interarrival.mean": 100.01}
    assert 0 < significant.gain["mean"] - significant.gain["ci95"] < significant.gain["mean"] < 0.1
    worth = Objective("wip_mean", min_gain=0.1)
    advice = advise(line, state, actions=actions, objective=worth, **runs)  # type: ignore[arg-type]
    assert advice.action is None and advice.gain == {"mean": 0.0, "ci95": 0.0}


def test_a_slower_release_is_advised_when_the_line_cannot_keep_up() -> None:
    """Orders every 50 s into a 55 s bottleneck: WIP grows without bound; asked for at most
    10 parts in the line on average with the most output, the advice slows the release."""
    line = line_from_dict(
        {
            "release": {"interarrival": {"dist": "exponential", "mean": 50.0}},
            "stations": [
                {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 30.0}},
                {"name": "weld", "cycle_time": {"dist": "exponential", "mean": 55.0}},
            ],
        }
    )
    state = LineState(format="fabbrica-state/1", stations={"weld": StationState(buffer=12)})
    objective = Objective("parts_out", "maximize", (Constraint("wip_mean", "<=", 10.0),))
    actions = grid(
        line,
        {"release.interarrival.mean": [50.0, 65.0, 80.0, 120.0]},
        current={"release.interarrival.mean": 50.0},
    )
    advice = advise(
        line, state, actions=actions, objective=objective, horizon=40_000.0, replications=8, seed=3
    )
    assert advice.action is not None and advice.action["release.interarrival.mean"] > 50.0
    assert advice.feasible[0] is False
    chosen = advice.chosen
    assert chosen.mean("wip_mean") <= 10.0


def test_candidates_are_checked_against_the_line_and_the_limits() -> None:
    line = conwip_line(4)
    with pytest.raises(SetpointError, match=r"release\.conwip: 40 is outside the limits \[1, 16\]"):
        grid(line, {"release.conwip": [40]}, Limits.default(line))
    with pytest.raises(SetpointError, match="has no such setpoint"):
        grid(line, {"release.interarrival.mean": [40.0]})
    with pytest.raises(SetpointError, match="whole number"):
        grid(line, {"release.conwip": [4.5]})
    with pytest.raises(ValueError, match="not a numeric line KPI"):
        Objective("bottleneck")


def test_choose_follows_its_rules_on_given_runs() -> None:
    """Hand-made replications: the paired differences and the rules, without the engine."""
    from twin.advice import LINE_KPIS, Candidate

    def candidate(action: dict[str, Any], wip: list[float], out: list[float]) -> Candidate:
        values = {name: [math.nan] * len(wip) for name in LINE_KPIS}
        values["wip_mean"], values["parts_out"] = wip, out
        return Candidate(action, values)

    nothing = candidate({}, [10, 12, 11, 13], [100, 101, 99, 100])
    better = candidate({"release.conwip": 3}, [8, 10, 9, 11], [100, 101, 99, 100])  # 2 less every run
    noisy = candidate({"release.conwip": 2}, [6, 14, 5, 15], [100, 101, 99, 100])
    advice = choose([nothing, better, noisy], Objective("wip_mean"), None, 100.0)
    assert advice.action == {"release.conwip": 3} and advice.gain == {"mean": 2.0, "ci95": 0.0}
    advice = choose([nothing, noisy], Objective("wip_mean"), None, 100.0)
    assert advice.action is None  # 1 part less on average, but not significantly
    limited = Objective("wip_mean", "minimize", (Constraint("parts_out", ">=", 100.5),))
    advice = choose([nothing, better], limited, None, 100.0)
    assert advice.action is None and "no candidate meets the constraints" in advice.reason

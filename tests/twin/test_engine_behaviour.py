"""Engine behaviour beyond queueing formulas: determinism, common random numbers, warm-up,
buffers, scrap, set-ups, CONWIP, calendar failures, operator stop and start."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import simpy

from twin.engine import LineModel, simulate
from twin.line import Line, line_from_dict
from twin.station import Machine


class Recorder:
    """An observer that keeps every finished part and checks buffer capacities as the run goes."""

    def __init__(self) -> None:
        self.cycle_times: dict[str, list[float]] = {}
        self.model: LineModel | None = None
        self.max_queue: dict[int, int] = {}

    def machine_state(self, machine: Machine, state: int, now: float) -> None:
        assert self.model is not None
        for index, buffer in enumerate(self.model.buffers):
            if buffer is not None:
                self.max_queue[index] = max(self.max_queue.get(index, 0), len(buffer.items))

    def part_finished(
        self, machine: Machine, part: list, cycle_time: float, scrapped: bool, now: float
    ) -> None:
        name = self.model.line.stations[machine.station_index].name  # type: ignore[union-attr]
        self.cycle_times.setdefault(name, []).append(cycle_time)


def run_recorded(line: Line, horizon: float, seed: int = 1) -> tuple[LineModel, Recorder]:
    recorder = Recorder()
    model = LineModel(line, seed, observer=recorder)
    recorder.model = model
    model.env.run(until=horizon)
    model.close()
    return model, recorder


def tandem(**overrides: Any) -> dict[str, Any]:
    stations = [
        {"name": "a", "cycle_time": {"dist": "exponential", "mean": 10}},
        {"name": "b", "cycle_time": {"dist": "lognormal", "mean": 9, "cv": 0.5}, "buffer": 2},
        {"name": "c", "cycle_time": {"dist": "gamma", "mean": 8, "cv": 0.8}, "buffer": 0},
    ]
    return {"name": "tandem", "horizon": 20000, "stations": stations, **overrides}


def mean_ci(values: list[float], z: float = 3.29) -> tuple[float, float]:
    """Mean and 99.9 % normal half-width of independent replications."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), z * float(array.std(ddof=1)) / math.sqrt(len(array))


def test_same_seed_same_result() -> None:
    line = line_from_dict(tandem())
    first, second = simulate(line, seed=4).kpis, simulate(line, seed=4).kpis
    first.pop("wall_s"), second.pop("wall_s")
    assert first == second


def test_changing_one_station_leaves_other_streams_alone() -> None:
    line = line_from_dict(tandem())
    changed = tandem()
    changed["stations"][1]["cycle_time"] = {"dist": "uniform", "low": 1, "high": 30}
    _, before = run_recorded(line, 5000)
    _, after = run_recorded(line_from_dict(changed), 5000)
    n = min(len(before.cycle_times["c"]), len(after.cycle_times["c"]))
    assert before.cycle_times["a"][:100] == after.cycle_times["a"][:100]
    assert before.cycle_times["c"][:n] == after.cycle_times["c"][:n]
    assert before.cycle_times["b"][:50] != after.cycle_times["b"][:50]


def test_buffers_never_exceed_their_capacity() -> None:
    _, recorder = run_recorded(line_from_dict(tandem()), 20000)
    assert recorder.max_queue[1] == 2  # reached, never exceeded
    assert recorder.max_queue.get(2, 0) == 0  # hand-over: no part ever waits in the buffer


def test_warmup_restarts_every_statistic() -> None:
    line = line_from_dict(tandem(warmup=5000))
    result = simulate(line, seed=2)
    assert result.kpis["parts_out"] == len(result.lead_times) == len(result.exit_times)
    assert min(result.exit_times) >= 5000
    for values in result.kpis["stations"].values():
        assert sum(values[s] for s in ("working", "blocked", "starved", "down", "setup")) == pytest.approx(
            1.0
        )
    full = simulate(line, seed=2, warmup=0)
    assert full.kpis["parts_out"] > result.kpis["parts_out"]


def test_scrap_rate_and_quality() -> None:
    data = tandem()
    data["stations"][2]["scrap"] = 0.1
    line = line_from_dict(data)
    outs, scraps = [], []
    for seed in range(10):
        kpis = simulate(line, seed=seed).kpis
        outs.append(kpis["parts_out"])
        scraps.append(kpis["scrapped"])
        c = kpis["stations"]["c"]
        assert c["quality"] == pytest.approx(c["parts_out"] / (c["parts_out"] + c["scrapped"]))
    rates = [s / (s + o) for s, o in zip(scraps, outs, strict=True)]
    mean, half = mean_ci(rates)
    assert abs(mean - 0.1) <= half


def test_setup_share_with_alternating_products() -> None:
    line = line_from_dict(
        {
            "products": [{"name": "A", "mix": 1}, {"name": "B", "mix": 1}],
            "horizon": 50000,
            "stations": [{"name": "m", "cycle_time": 10, "setup": 5}],
        }
    )
    shares = [simulate(line, seed=seed).kpis["stations"]["m"]["setup"] for seed in range(8)]
    # a change-over before a part happens with probability 1/2: setup share = 2.5 / 12.5
    mean, half = mean_ci(shares)
    assert abs(mean - 0.2) <= half


@pytest.mark.parametrize("basis", ["operating", "calendar"])
def test_single_unreliable_machine(basis: str) -> None:
    line = line_from_dict(
        {
            "horizon": 200000,
            "stations": [
                {
                    "name": "m",
                    "cycle_time": {"dist": "exponential", "mean": 10},
                    "failures": {"mtbf": 1000, "mttr": 100, "basis": basis},
                }
            ],
        }
    )
    runs = [simulate(line, seed=seed).kpis for seed in range(8)]
    mean, half = mean_ci([r["throughput_per_hour"] for r in runs])
    assert abs(mean - 360 * 1000 / 1100) <= half
    mean, half = mean_ci([r["stations"]["m"]["down"] for r in runs])
    assert abs(mean - 100 / 1100) <= half


def test_conwip_caps_the_parts_in_the_line() -> None:
    line = line_from_dict(tandem(release={"conwip": 3}))
    recorder_peak = []

    class Peak:
        def __init__(self) -> None:
            self.model: LineModel | None = None

        def machine_state(self, machine: Machine, state: int, now: float) -> None:
            recorder_peak.append(self.model.wip)  # type: ignore[union-attr]

        def part_finished(self, *args: object) -> None:
            pass

    peak = Peak()
    model = LineModel(line, 1, observer=peak)
    peak.model = model
    model.env.run(until=20000)
    assert max(recorder_peak) == 3
    assert simulate(line).kpis["wip_mean"] <= 3


def test_interarrival_with_finite_first_buffer_keeps_a_backlog() -> None:
    line = line_from_dict(
        {
            "release": {"interarrival": {"dist": "exponential", "mean": 9}},
            "horizon": 20000,
            "stations": [{"name": "m", "cycle_time": {"dist": "exponential", "mean": 10}, "buffer": 1}],
        }
    )
    model = LineModel(line, 1)
    queue, backlog = [], []

    def sample(env: simpy.Environment) -> Any:
        while True:
            queue.append(len(model.buffers[0].items))  # type: ignore[union-attr]
            backlog.append(len(model.release.backlog.items))  # type: ignore[union-attr]
            yield env.timeout(1.0)

    model.env.process(sample(model.env))
    model.env.run(until=20000)
    assert max(queue) == 1
    assert max(backlog) > 1


def test_operator_stop_and_start() -> None:
    line = line_from_dict({"horizon": 1000, "stations": [{"name": "m", "cycle_time": 10}]})
    model = LineModel(line, 1)
    machine = model.machines[0][0]

    def operator(env: simpy.Environment) -> Any:
        yield env.timeout(105)
        machine.stop()
        yield env.timeout(300)
        machine.start()

    model.env.process(operator(model.env))
    model.env.run(until=1000)
    model.close()
    # parts 1..11 finish by t=110, the machine stands until 405, then 59 more parts by 995
    assert model.exits == 11 + 59
    assert machine.time_in[5] == pytest.approx(405 - 110)


@pytest.mark.parametrize("slow", ["a", "b", "c"])
def test_active_period_bottleneck_finds_the_slowest_station(slow: str) -> None:
    stations = [
        {"name": name, "cycle_time": {"dist": "exponential", "mean": 13 if name == slow else 8}, "buffer": 3}
        for name in ("a", "b", "c")
    ]
    kpis = simulate(line_from_dict({"horizon": 50000, "stations": stations}), seed=3).kpis
    assert kpis["bottleneck"] == slow
    stations = kpis["stations"].values()
    # some machine is always active here, hence always a bottleneck; sole periods never overlap
    assert sum(v["bottleneck_sole"] for v in stations) <= 1.0 + 1e-12
    assert sum(v["bottleneck_sole"] + v["bottleneck_shifting"] for v in stations) >= 1.0 - 1e-12
    assert kpis["stations"][slow]["bottleneck_sole"] > 0.5


def test_bottleneck_shares_on_hand_made_periods() -> None:
    from twin.bottleneck import bottleneck_shares

    # machine 0 active [0, 6), machine 1 active [4, 10): 0 is the sole bottleneck on [0, 4), 1 on
    # [6, 10), and the overlap [4, 6) of their active periods is a shifting bottleneck for both
    sole, shifting = bottleneck_shares([[(0.0, 6.0)], [(4.0, 10.0)]], 0.0, 10.0)
    assert sole.tolist() == pytest.approx([0.4, 0.4])
    assert shifting.tolist() == pytest.approx([0.2, 0.2])

"""The forecast's P10-P90 band against shifts that really happened, when the twin is the true model.

Each of 200 two-hour shifts is played with the SimPy engine from the same start state,
with a seed of its own: that is the line. At the start of the shift, at its middle and
15 minutes before its end, the shift is stopped, its state taken (`LineModel.snapshot`)
and the forecast made from it as `fabbrica twin forecast` makes it
(`twin.forecast.forecast`, with other seeds); then the shift goes on to its end. The parts that
actually left the line after the forecast's instant are held against the forecast's p10
and p90 of `parts_out`.

If the twin is right, the band holds the actual output in 80 % of the shifts, less the
little that estimating the quantiles from R replications loses: a new draw falls between
the interpolated 10 % and 90 % order statistics of R draws with probability
0.8 (R - 1) / (R + 1) (0.769 for R = 50). Counts are integers, so an actual output equal
to p10 or p90 counts half a hit (the mid-point of the band's closed and open readings;
without it the closed band holds up to 5 points more than 80 % late in the shift, when
few parts are left to make). The hits are held against the 99.9 % two-sided interval of
Binomial(200, 0.8 (R - 1) / (R + 1)). The start-of-shift forecast is one forecast for all
shifts (they all start from the same state), with R = 2000 so that its own quantile error
is small against the binomial one.

The line: an exponential first station, an exponential station that breaks down (operating
failures: the exponential times make the snapshot, which does not know how long a part
was in work before a breakdown, a complete state) and a lognormal last station (whose
part in work finishes after a residual drawn given its elapsed time). The check must be
able to fail: a twin that believes repairs take half as long is
caught by the same shifts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.stats

from tests.parallel import replications
from twin.engine import LineModel
from twin.forecast import forecast
from twin.line import Line, line_from_dict
from twin.state import start_plan, state_from_dict

SHIFT = 2 * 3600.0
INSTANTS = {"start": 0.0, "middle": 3600.0, "late": 6300.0}  # the last: 15 minutes before the end
SHIFTS = 200
REPLICATIONS = 50  # per forecast within a shift (the expected share allows for so few)
START_REPLICATIONS = 2000  # the one start-of-shift forecast
LEVEL = 0.999
TRUTH_SEEDS = 1_000_000  # shift i is played with seed TRUTH_SEEDS + i
FORECAST_SEEDS = {"start": 4_000_000, "middle": 2_000_000, "late": 3_000_000}  # + 1000 i per shift

LINE_DATA: dict[str, Any] = {
    "name": "coverage",
    "release": "saturated",
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 30}},
        {
            "name": "mill",
            "cycle_time": {"dist": "exponential", "mean": 27},
            "buffer": 4,
            "failures": {"mtbf": "15min", "mttr": "3min", "basis": "operating"},
        },
        {"name": "pack", "cycle_time": {"dist": "lognormal", "mean": 31, "cv": 0.3}, "buffer": 4},
    ],
}
LINE = line_from_dict(LINE_DATA)
START = state_from_dict(
    {
        "format": "fabbrica-state/1",
        "stations": {
            "cut": {"machines": [{"state": "working", "elapsed_s": 12.0}]},
            "mill": {"buffer": 2, "machines": [{"state": "down", "elapsed_s": 60.0}]},
            "pack": {"buffer": 3, "machines": [{"state": "working", "elapsed_s": 25.0}]},
        },
    }
)


@dataclass(frozen=True)
class Band:
    """One forecast's band and what actually came out after its instant."""

    p10: float
    p90: float
    actual: int

    @property
    def hit(self) -> float:
        """1 inside the band, 0 outside, 1/2 on its edge."""
        if self.p10 < self.actual < self.p90:
            return 1.0
        return 0.5 if self.actual in (self.p10, self.p90) else 0.0

    @property
    def width(self) -> float:
        return self.p90 - self.p10


def quantiles(result: dict[str, Any]) -> tuple[float, float]:
    return result["parts_out"]["p10"], result["parts_out"]["p90"]


def play_shift(shift: int, start: tuple[float, float]) -> dict[str, Band]:
    """Shift `shift` played to its end, with the band forecast at each instant (a worker runs it)."""
    seed = TRUTH_SEEDS + shift
    model = LineModel(LINE, seed, start=start_plan(LINE, START, seed))
    made: dict[str, tuple[int, tuple[float, float]]] = {"start": (0, start)}
    for name, instant in INSTANTS.items():
        if name == "start":
            continue
        model.env.run(until=instant)
        result = forecast(
            LINE,
            model.snapshot(),
            horizon=SHIFT - instant,
            replications=REPLICATIONS,
            seed=FORECAST_SEEDS[name] + 1000 * shift,
        )
        made[name] = (len(model.exit_times), quantiles(result))
    model.env.run(until=SHIFT)
    out = len(model.exit_times)
    return {name: Band(p10, p90, out - before) for name, (before, (p10, p90)) in made.items()}


@functools.cache
def shifts() -> dict[str, list[Band]]:
    """Every shift played to its end, with the bands forecast at each instant of INSTANTS."""
    start = quantiles(
        forecast(LINE, START, horizon=SHIFT, replications=START_REPLICATIONS, seed=FORECAST_SEEDS["start"])
    )
    played = replications(play_shift, [(shift, start) for shift in range(SHIFTS)])
    return {name: [bands[name] for bands in played] for name in INSTANTS}


def expected_share(replications: int) -> float:
    """The chance that a new draw falls between the interpolated 10 % and 90 % quantiles of R draws."""
    return 0.8 * (replications - 1) / (replications + 1)


def tolerance(replications: int) -> tuple[float, float]:
    """The 99.9 % two-sided interval of the share of hits in SHIFTS shifts, if the twin is right."""
    low, high = scipy.stats.binom.interval(LEVEL, SHIFTS, expected_share(replications))
    return low / SHIFTS, high / SHIFTS


def share(bands: list[Band]) -> float:
    return float(np.mean([band.hit for band in bands]))


@pytest.mark.slow
@pytest.mark.parametrize("instant", list(INSTANTS))
def test_p10_to_p90_holds_the_actual_output_in_80_percent_of_the_shifts(instant: str) -> None:
    bands = shifts()[instant]
    replications = START_REPLICATIONS if instant == "start" else REPLICATIONS
    low, high = tolerance(replications)
    got = share(bands)
    closed = np.mean([band.p10 <= band.actual <= band.p90 for band in bands])
    assert low <= got <= high, (
        f"{instant}: the band held the output in {got:.3f} of {SHIFTS} shifts (closed band {closed:.3f}), "
        f"outside [{low:.3f}, {high:.3f}] around {expected_share(replications):.3f}"
    )


@pytest.mark.slow
def test_the_band_narrows_as_the_shift_goes_on() -> None:
    widths = {name: float(np.mean([band.width for band in bands])) for name, bands in shifts().items()}
    assert widths["start"] > widths["middle"] > widths["late"] > 0, widths


@pytest.mark.slow
def test_a_twin_with_too_short_repairs_is_caught_by_the_same_shifts() -> None:
    """The check can fail: the start-of-shift band of a twin whose repairs take 90 s instead of 3 minutes."""
    data = {**LINE_DATA, "stations": [dict(station) for station in LINE_DATA["stations"]]}
    data["stations"][1]["failures"] = {**data["stations"][1]["failures"], "mttr": "90s"}
    wrong: Line = line_from_dict(data)
    p10, p90 = quantiles(
        forecast(wrong, START, horizon=SHIFT, replications=START_REPLICATIONS, seed=FORECAST_SEEDS["start"])
    )
    bands = [Band(p10, p90, band.actual) for band in shifts()["start"]]
    low, _ = tolerance(START_REPLICATIONS)
    assert share(bands) < low, (
        f"the wrong twin's band [{p10:g}, {p90:g}] held {share(bands):.3f} of the shifts"
    )

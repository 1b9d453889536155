"""Calibration tells machines that wear out from memoryless ones: the censored Weibull fit of the times
to failure, on drawn samples and on a simulated line's recorded history.

The Weibull shape's maximum-likelihood estimate has the asymptotic standard error
0.780 k / sqrt(r) for r complete failures (the inverse Fisher information, 6/pi^2 k^2/r; censoring
widens it a little), which sets the fixed tolerances beside the profile-likelihood intervals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tests.twin.test_calibration_estimate import record
from twin.calibration.estimate import calibrate_line, times_to_failure
from twin.calibration.fit import fit_durations, fit_times_to_failure
from twin.line import line_from_dict


def shape_standard_error(shape: float, failures: int) -> float:
    return math.sqrt(6) / math.pi * shape / math.sqrt(failures)


def renewal_window(rng: np.random.Generator, draw: Any, machines: int, window: float) -> tuple[list, list]:
    """Complete and censored times of `machines` machines renewed at each failure over `window`."""
    complete, censored = [], []
    for _ in range(machines):
        clock = 0.0
        while True:
            life = float(draw(rng))
            if clock + life > window:
                censored.append(window - clock)
                break
            complete.append(life)
            clock += life
    return complete, censored


def test_aging_times_to_failure_give_a_weibull_whose_shape_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(2025)
    scale = 1800 / math.gamma(1 + 1 / 2.5)  # mean 30 min
    complete, censored = renewal_window(rng, lambda g: scale * g.weibull(2.5), machines=4, window=100 * 3600)
    report = fit_times_to_failure(complete, censored)
    assert report.best.family == "weibull"
    shape = report.best.spec["shape"]
    low, high = report.best.ci95["shape"]
    assert low <= 2.5 <= high and low > 1
    assert abs(shape - 2.5) <= 3.29 * shape_standard_error(2.5, report.n)
    # the profile interval is about as wide as the asymptotic one
    assert (high - low) / (2 * 1.96 * shape_standard_error(shape, report.n)) == pytest.approx(1, abs=0.15)
    assert abs(report.best.spec["mean"] - 1800) <= 3.29 * 1800 * 0.43 / math.sqrt(
        report.n
    )  # cv(k=2.5) = 0.43
    aic = {fit.family: fit.aic for fit in report.candidates}
    assert aic["weibull"] < aic["exponential"] - 100


def test_memoryless_times_to_failure_stay_exponential() -> None:
    rng = np.random.default_rng(2026)
    complete, censored = renewal_window(rng, lambda g: g.exponential(1800), machines=4, window=100 * 3600)
    report = fit_times_to_failure(complete, censored)
    assert report.best.family == "exponential"
    low, high = report.best.ci95["mean"]
    assert low < report.best.spec["mean"] < high
    assert abs(report.best.spec["mean"] - 1800) <= 3.29 * 1800 / math.sqrt(report.n)
    assert report.best.spec["mean"] == pytest.approx((sum(complete) + sum(censored)) / len(complete))
    weibull = report.candidates[1]
    assert weibull.ci95["shape"][0] <= 1 <= weibull.ci95["shape"][1]


def test_early_failures_give_a_shape_below_one() -> None:
    rng = np.random.default_rng(7)
    complete, censored = renewal_window(rng, lambda g: 600 * g.weibull(0.6), machines=2, window=50 * 3600)
    report = fit_times_to_failure(complete, censored)
    assert report.best.family == "weibull" and report.best.ci95["shape"][1] < 1
    assert abs(report.best.spec["shape"] - 0.6) <= 3.29 * shape_standard_error(0.6, report.n)


def test_uncensored_weibull_fit_through_fit_durations() -> None:
    sample = 40 * np.random.default_rng(3).weibull(3.0, 4000)
    report = fit_durations(sample, families=("exponential", "gamma", "weibull"))
    assert report.best.family == "weibull"
    assert abs(report.best.spec["shape"] - 3.0) <= 3.29 * shape_standard_error(3.0, 4000)


def test_too_few_failures_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 2 complete"):
        fit_times_to_failure([5.0], [3.0])


def test_failure_clock_runs_from_a_repair_to_the_next_failure() -> None:
    intervals = [
        ("working", 0, 100),  # age unknown at the window's start: not a sample
        ("down", 100, 110),
        ("working", 110, 150),
        ("blocked", 150, 170),  # the operating clock stops, the calendar clock runs
        ("working", 170, 200),
        ("down", 200, 230),
        ("working", 230, 260),
        ("starved", 260, 300),
    ]
    assert times_to_failure(intervals, "operating", 300) == ([70.0], [30.0])
    assert times_to_failure(intervals, "calendar", 300) == ([90.0], [70.0])
    # down at the window's end: no censored time; down from the window's start: a renewal at its end
    assert times_to_failure([("down", 0, 5), ("working", 5, 50), ("down", 50, 60)], "operating", 60) == (
        [45.0],
        [],
    )


AGING_LINE: dict[str, Any] = {
    "name": "presses",
    "stations": [
        {
            "name": "press",
            "cycle_time": {"dist": "gamma", "mean": 40, "cv": 0.2},
            "failures": {"ttf": {"dist": "weibull", "shape": 2.5, "mean": "30min"}, "mttr": "3min"},
        },
        {
            "name": "trim",
            "cycle_time": 30,
            "buffer": 5,
            "failures": {"mtbf": "40min", "mttr": "2min"},
        },
    ],
}


def test_a_line_whose_failures_age_is_calibrated_as_such() -> None:
    """Over 200 h of line time (about 350 failures per station) the press, whose failures age, gets a
    Weibull whose shape interval holds 2.5; the trim station, memoryless, keeps an exponential."""
    records, window = record(AGING_LINE, 200, seed=11)
    prior = {
        **AGING_LINE,
        "stations": [{**s, "failures": {"mtbf": "2h", "mttr": "5min"}} for s in AGING_LINE["stations"]],
    }
    line, results = calibrate_line(prior, records, window)
    press, trim = results
    assert press.failure_fit is not None and press.failure_fit.best.family == "weibull"
    low, high = press.failure_fit.best.ci95["shape"]
    assert low <= 2.5 <= high
    assert abs(press.mtbf_s - 1800) <= 3.29 * 1800 * 0.43 / math.sqrt(press.failure_fit.n)
    assert line["stations"][0]["failures"]["ttf"]["dist"] == "weibull"
    assert "mtbf" not in line["stations"][0]["failures"]
    assert trim.failure_fit is not None and trim.failure_fit.best.family == "exponential"
    assert line["stations"][1]["failures"]["mtbf"] == pytest.approx(trim.mtbf_s)
    calibrated = line_from_dict(line)  # a valid line, with the fitted Weibull
    assert calibrated.stations[0].failures.time_to_failure.shape == pytest.approx(
        press.failure_fit.best.spec["shape"]
    )
    assert press.summary()["failure_fit"]["dist"] == "weibull"

"""Statistics and designs: Student-t half-widths, the precision rule, MSER-5, factorial and LHS designs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from twin.experiments.design import build_scenarios, pilot_seed, replication_seed
from twin.experiments.spec import spec_from_dict
from twin.experiments.stats import estimate, precise_enough, replications_needed, t_quantile
from twin.experiments.warmup import mser5_warmup, mser_truncation


def test_student_t_interval() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0]
    est = estimate(values)
    assert est.mean == 11.0 and est.std == pytest.approx(np.std(values, ddof=1))
    low, high = stats.t.interval(0.95, 4, loc=11.0, scale=stats.sem(values))
    assert est.ci95 == pytest.approx((high - low) / 2)
    assert t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(1000) == pytest.approx(1.962, abs=1e-3)
    assert math.isnan(estimate([3.0]).ci95) and estimate([3.0]).mean == 3.0
    assert estimate([None, float("nan"), 1.0, 3.0]).n == 2


def test_precision_rule() -> None:
    est = estimate([100.0, 104.0, 96.0, 102.0, 98.0])  # half-width about 3.9 = 3.9%
    assert not precise_enough(est, relative=0.02, absolute=None)
    assert precise_enough(est, relative=0.05, absolute=None)
    assert precise_enough(est, relative=None, absolute=4.0)
    needed = replications_needed(est, 5, relative=0.02, absolute=None, maximum=50)
    assert needed == math.ceil(5 * (est.ci95 / 2.0) ** 2)
    assert replications_needed(est, 5, relative=0.001, absolute=None, maximum=50) == 50
    assert replications_needed(est, 5, relative=0.05, absolute=None, maximum=50) == 5
    assert replications_needed(est, 50, relative=0.001, absolute=None, maximum=50) == 50


def test_mser_finds_the_transient() -> None:
    rng = np.random.default_rng(3)
    transient = np.linspace(0.0, 10.0, 200)
    series = np.concatenate([transient, np.full(2000, 10.0)]) + rng.normal(0, 1, 2200)
    truncated, at_limit = mser_truncation(series)
    assert 120 <= truncated <= 260 and not at_limit
    flat, _ = mser_truncation(rng.normal(0, 1, 2000))
    assert flat < 200
    exits = np.arange(1, 2201) * 60.0
    found = mser5_warmup([(series, exits), (series, exits)])
    assert found.warmup_s == exits[found.truncated - 1] and found.observations == 2200
    assert mser5_warmup([([], [])]).at_limit


def test_seeds_depend_on_seed_and_replication_only() -> None:
    seeds = [replication_seed(7, r) for r in range(100)]
    assert len(set(seeds)) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[3] == replication_seed(7, 3)
    assert replication_seed(8, 3) != seeds[3]
    assert pilot_seed(7, 0) not in seeds


def test_full_factorial() -> None:
    spec = spec_from_dict(
        {
            "line": "l.yaml",
            "factors": {"a.x": [1, 2, 3], "a.y": {"low": "1min", "high": "5min", "levels": 3}},
        },
        "e.yaml",
    )
    scenarios = build_scenarios(spec)
    assert len(scenarios) == 9 and [s.id for s in scenarios][:2] == ["s1", "s2"]
    assert scenarios[0].factors == {"a.x": 1, "a.y": 60.0}
    assert scenarios[1].factors == {"a.x": 1, "a.y": 180.0}
    assert scenarios[-1].factors == {"a.x": 3, "a.y": 300.0}
    two_level = spec_from_dict(
        {"line": "l.yaml", "factors": {"b": {"low": 2, "high": 8, "integer": True}}}, "e"
    )
    assert [s.factors["b"] for s in build_scenarios(two_level)] == [2, 8]


def test_latin_hypercube_is_stratified_and_reproducible() -> None:
    data = {
        "line": "l.yaml",
        "factors": {
            "r": {"low": 0, "high": 100},
            "n": {"low": 1, "high": 10, "integer": True},
            "c": ["x", "y"],
        },
        "design": {"type": "latin_hypercube", "samples": 10, "seed": 3},
    }
    scenarios = build_scenarios(spec_from_dict(data, "e"))
    assert [s.id for s in scenarios] == [f"s{i:02d}" for i in range(1, 11)]
    r = sorted(s.factors["r"] for s in scenarios)
    assert [int(v // 10) for v in r] == list(range(10))  # one sample in each tenth of the range
    assert sorted(s.factors["n"] for s in scenarios) == list(range(1, 11))
    assert sorted(s.factors["c"] for s in scenarios) == ["x"] * 5 + ["y"] * 5
    assert build_scenarios(spec_from_dict(data, "e")) == scenarios
    other = build_scenarios(spec_from_dict({**data, "design": {**data["design"], "seed": 4}}, "e"))
    assert other != scenarios
    # adding a factor leaves the other factors' samples alone
    more = {**data, "factors": {**data["factors"], "z": {"low": 0, "high": 1}}}
    assert [s.factors["r"] for s in build_scenarios(spec_from_dict(more, "e"))] == [
        s.factors["r"] for s in scenarios
    ]

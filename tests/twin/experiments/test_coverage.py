"""Honest confidence intervals: the 95% interval covers a throughput known exactly from theory.

Two exponential machines with rates mu1 and mu2 and a buffer of b places between
them, blocking after service, saturated in front. The number n of parts past the
first machine (in the buffer, at the second machine, or finished but blocked on
the first) is a birth-death chain on 0..b+2 with birth rate mu1 and death rate
mu2, so pi_n is proportional to (mu1/mu2)^n and the throughput is mu2 (1 - pi_0).
The same small experiment is repeated with 200 experiment seeds; its 95%
Student-t interval must cover the exact value in at least 90% of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.experiments import Experiment

MEAN_1, MEAN_2, BUFFER = 50.0, 60.0, 1
REPETITIONS = 200


def exact_throughput_per_hour(mu1: float, mu2: float, buffer: int) -> float:
    """Throughput of the two-machine line from the stationary birth-death distribution."""
    rho = mu1 / mu2
    weights = [rho**n for n in range(buffer + 3)]
    p0 = weights[0] / sum(weights)
    return mu2 * (1.0 - p0) * 3600.0


def test_exact_value_by_hand() -> None:
    # mu1 = mu2 = 1 and b = 0 (hand-over): three equally likely states, throughput 2/3 per second
    assert exact_throughput_per_hour(1.0, 1.0, 0) == pytest.approx(2 / 3 * 3600)
    # no room to block (mu1 very slow): the first machine is the bottleneck
    assert exact_throughput_per_hour(1e-6, 1.0, 3) == pytest.approx(1e-6 * 3600, rel=1e-5)


@pytest.mark.slow
def test_ci95_covers_the_exact_throughput(tmp_path: Path) -> None:
    line = {
        "name": "two-machines",
        "stations": [
            {"name": "m1", "cycle_time": {"dist": "exponential", "mean": MEAN_1}},
            {"name": "m2", "cycle_time": {"dist": "exponential", "mean": MEAN_2}, "buffer": BUFFER},
        ],
    }
    (tmp_path / "line.yaml").write_text(yaml.safe_dump(line))
    exact = exact_throughput_per_hour(1 / MEAN_1, 1 / MEAN_2, BUFFER)
    covered = 0
    widths = []
    for seed in range(1, REPETITIONS + 1):
        experiment = Experiment.from_dict(
            {
                "name": f"coverage-{seed}",
                "line": "line.yaml",
                "replications": 5,
                "horizon": "8h",
                "warmup": "20min",
                "seed": seed,
                "kpis": ["throughput_per_hour"],
            },
            base_dir=tmp_path,
        )
        summary = experiment.run(workers=1).summary.iloc[0]
        assert summary.replications == 5
        widths.append(summary.ci95)
        covered += abs(summary["mean"] - exact) <= summary.ci95
    coverage = covered / REPETITIONS
    print(f"coverage {coverage:.2f}, mean half-width {sum(widths) / len(widths):.3f}/h, exact {exact:.3f}/h")
    assert coverage >= 0.90, f"coverage {coverage:.2f} of the exact throughput {exact:.3f}/h"
    # and the intervals are not uselessly wide (a few percent of the value)
    assert sum(widths) / len(widths) < 0.06 * exact

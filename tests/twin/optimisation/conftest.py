"""Fixtures for optimisation tests: a small exponential tandem line and an optimisation file beside it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT, WriteStudy, run_fabbrica, study_writer

# `fabbrica` run in a fresh interpreter from the project root, as a user would
fabbrica = partial(run_fabbrica, timeout=180, cwd=ROOT)

TANDEM = {
    "name": "tandem",
    "release": "saturated",
    "stations": [
        {"name": "s1", "cycle_time": {"dist": "exponential", "mean": 60}},
        {"name": "s2", "cycle_time": {"dist": "exponential", "mean": 55}, "buffer": 1},
        {"name": "s3", "cycle_time": {"dist": "exponential", "mean": 65}, "buffer": 1},
    ],
}

BUFFERS = {
    "name": "buffers",
    "horizon": "6h",
    "warmup": "30min",
    "seed": 7,
    "replications": 3,
    "variables": {
        "stations.s2.buffer": {"int": [0, 4]},
        "stations.s3.buffer": {"int": [0, 4]},
    },
    "constraints": [{"sum": ["stations.s2.buffer", "stations.s3.buffer"], "max": 4}],
    "objectives": [{"kpi": "throughput_per_hour", "goal": "maximize"}],
    "budget": {"evaluations": 8},
    "search": {"method": "tpe"},
    "selection": {"delta": 1.0, "alpha": 0.05, "candidates": 3, "first": 5, "max_replications": 40},
}

WriteSpec = WriteStudy


@pytest.fixture
def write_spec(tmp_path: Path) -> WriteSpec:
    """Write a line (default: a three-station exponential tandem) and an optimisation file; its path."""
    return study_writer(tmp_path, TANDEM, "opt.yaml")

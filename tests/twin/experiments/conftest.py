"""Fixtures for experiment tests: a small line and experiment files beside it.

The Dask cluster of the tests that run on `--scheduler` is tests/conftest.py's `dask_scheduler`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT, WriteStudy, run_fabbrica, study_writer

# `fabbrica` run in a fresh interpreter from the project root, as a user would
fabbrica = partial(run_fabbrica, timeout=120, cwd=ROOT)

TANDEM = {
    "name": "tandem",
    "release": "saturated",
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 50}},
        {"name": "weld", "cycle_time": {"dist": "exponential", "mean": 60}, "buffer": 2},
        {"name": "pack", "cycle_time": {"dist": "exponential", "mean": 45}, "buffer": 1},
    ],
}

WriteExperiment = WriteStudy


@pytest.fixture
def write_experiment(tmp_path: Path) -> WriteExperiment:
    """Write a line (default: a three-station exponential tandem) and an experiment file; return its path."""
    return study_writer(tmp_path, TANDEM, "exp.yaml")

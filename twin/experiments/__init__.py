"""Experiments with the twin: scenarios, designs, replications with confidence intervals, reports.

>>> from twin.experiments import Experiment
>>> result = Experiment.from_yaml("simulations/experiments/buffer_allocation.yaml").run(workers=2)
>>> result.runs        # one row per scenario x replication (pandas)
>>> result.summary     # mean, std, 95% half-width per scenario and KPI

The names below are imported when first used (PEP 562), so that a module needing only
`twin.experiments.stats` (the shift forecast) does not load pandas and the report code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.experiments.design import Scenario, replication_seed
    from twin.experiments.experiment import Experiment
    from twin.experiments.results import ExperimentResult
    from twin.experiments.spec import ExperimentError, ExperimentSpec, load_spec

_WHERE = {
    "Scenario": "twin.experiments.design",
    "replication_seed": "twin.experiments.design",
    "Experiment": "twin.experiments.experiment",
    "ExperimentResult": "twin.experiments.results",
    "ExperimentError": "twin.experiments.spec",
    "ExperimentSpec": "twin.experiments.spec",
    "load_spec": "twin.experiments.spec",
}

__all__ = [
    "Experiment",
    "ExperimentError",
    "ExperimentResult",
    "ExperimentSpec",
    "Scenario",
    "load_spec",
    "replication_seed",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'twin.experiments' has no attribute {name!r}")

"""Experiments with the twin: scenarios, designs, replications with confidence intervals, reports.

>>> from twin.experiments import Experiment
>>> result = Experiment.from_yaml("simulations/experiments/buffer_allocation.yaml").run(workers=2)
>>> result.runs        # one row per scenario x replication (pandas)
>>> result.summary     # mean, std, 95% half-width per scenario and KPI
"""

from twin.experiments.design import Scenario, replication_seed
from twin.experiments.experiment import Experiment
from twin.experiments.results import ExperimentResult
from twin.experiments.spec import ExperimentError, ExperimentSpec, load_spec

__all__ = [
    "Experiment",
    "ExperimentError",
    "ExperimentResult",
    "ExperimentSpec",
    "Scenario",
    "load_spec",
    "replication_seed",
]

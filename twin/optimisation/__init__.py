"""Optimisation with the twin: search the designs, then select the best with a stated probability.

>>> from twin.optimisation import Optimisation
>>> result = Optimisation.from_yaml("simulations/optimisation/buffers.yaml").run(workers=2)
>>> result.designs       # one row per design evaluated (pandas)
>>> result.evaluations   # one row per run
>>> result.to_json()["best"]

Modules: `spec.py` (the validated file), `space.py` (variables, distributions, grid),
`constraints.py` (feasibility and repair), `evaluate.py` (designs to runs with common
random numbers), `search.py` (Optuna or exhaustive), `feasibility.py` (the constraints
on KPIs tested at confidence 1 − α), `selection.py` (KN), `optimisation.py` (the whole),
`results.py` and `report.py` (what it leaves behind).
"""

from twin.optimisation.feasibility import FeasibilityResult, Limits, check_feasibility
from twin.optimisation.optimisation import Optimisation
from twin.optimisation.results import OptimisationResult
from twin.optimisation.selection import KNResult, kn
from twin.optimisation.spec import OptimisationError, OptimisationSpec, load_spec

__all__ = [
    "FeasibilityResult",
    "KNResult",
    "Limits",
    "Optimisation",
    "OptimisationError",
    "OptimisationResult",
    "OptimisationSpec",
    "check_feasibility",
    "kn",
    "load_spec",
]

"""The design space: every variable's values, as Optuna distributions and as a grid.

A design is a mapping of dotted path to value, in the order the variables are
written. Optuna stores categorical choices that are plain values (numbers,
strings) as themselves, and choices such as whole mappings by their index;
`encode`/`decode` translate between a design and a trial's parameters.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from twin.optimisation.spec import ChoiceVariable, FloatVariable, IntVariable, OptimisationSpec

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Design = dict[str, Any]


def _plain(values: list[Any]) -> bool:
    return all(v is None or isinstance(v, bool | int | float | str) for v in values)


def design_key(design: Mapping[str, Any]) -> str:
    """A design as text: the same design always gives the same key."""
    return json.dumps(list(design.items()), default=str)


class Space:
    """The variables of a spec: their distributions, their grid and the trial encoding."""

    def __init__(self, spec: OptimisationSpec) -> None:
        self.variables = dict(spec.variables)

    def distributions(self) -> dict[str, BaseDistribution]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, BaseDistribution] = {}
        for path, variable in self.variables.items():
            if isinstance(variable, IntVariable):
                values = variable.values()
                out[path] = IntDistribution(values[0], values[-1], step=variable.step)
            elif isinstance(variable, FloatVariable):
                low, high = variable.bounds
                if variable.step is not None:
                    high = variable.values()[-1]
                if high == low:
                    out[path] = CategoricalDistribution([low])
                else:
                    out[path] = FloatDistribution(low, high, step=variable.step, log=variable.log)
            else:
                choices = variable.choice if _plain(variable.choice) else list(range(len(variable.choice)))
                out[path] = CategoricalDistribution(choices)
        return out

    def decode(self, params: Mapping[str, Any]) -> Design:
        """A trial's parameters as a design."""
        design: Design = {}
        for path, variable in self.variables.items():
            value = params[path]
            if isinstance(variable, ChoiceVariable) and not _plain(variable.choice):
                value = variable.choice[int(value)]
            elif isinstance(variable, IntVariable):
                value = int(value)
            elif isinstance(variable, FloatVariable):
                value = float(value)
            design[path] = value
        return design

    def encode(self, design: Mapping[str, Any]) -> dict[str, Any]:
        """A design as a trial's parameters."""
        params: dict[str, Any] = {}
        for path, variable in self.variables.items():
            value = design[path]
            if isinstance(variable, ChoiceVariable) and not _plain(variable.choice):
                value = variable.choice.index(value)
            params[path] = value
        return params

    def grid(self) -> Iterator[Design]:
        """Every design of a discrete space (a continuous range needs a step), last variable fastest."""
        paths = list(self.variables)
        levels = [_levels(self.variables[path]) for path in paths]
        for values in itertools.product(*levels):
            yield dict(zip(paths, values, strict=True))

    def size(self) -> int | None:
        """How many designs there are (None when a variable is continuous)."""
        count = 1
        for variable in self.variables.values():
            if isinstance(variable, FloatVariable) and variable.step is None:
                return None
            count *= len(_levels(variable))
        return count


def _levels(variable: IntVariable | ChoiceVariable | FloatVariable) -> list[Any]:
    if isinstance(variable, FloatVariable) and variable.step is None:
        raise ValueError("a continuous range has no grid")
    return variable.values()

"""Constraints on KPIs in the selection stage: which candidates meet them, stated at confidence 1 − α.

A constraint on a KPI bounds its mean (`{kpi: lead_time_mean_s, max: 900}`). The search judges
it on a design's search mean, which is biased for the designs it picks; here every candidate
is tested again on its fresh selection-stage replications. At each look, after n = n0, 2·n0,
4·n0, … replications (the last look at `max_replications`; L looks in all), the one-sided
Student-t bounds of the KPI's mean are

    mean ± t(1 − α′, n − 1) · s / √n,    α′ = α / (k · m · L),

with k candidates and m limits (a constraint with both min and max has two). A constraint is
**met** when the bound on the inner side is within it (upper bound <= max, lower bound >= min),
**broken** when the bound on the outer side is beyond it (lower bound > max, or upper bound <
min), else **undecided**: the candidate gets replications up to the next look. A decision is
final; a candidate gets no more replications for the check once one constraint is broken or
all are met.

Each bound errs with probability at most α′ (normal observations), and the bounds that could
err number at most k · m · L, so with probability at least 1 − α no candidate has a constraint
declared met that is broken, or broken that is met: whatever the looks stopped at, and for
every candidate at once, so also for the one KN later chooses on the same replications.

This is the feasibility check of Batur & Kim (2010) and Andradóttir & Kim (2010) made simpler:
theirs is fully sequential and always decides, because it is given a tolerance ε around each
limit and may declare either way a mean within ε of it. Without a tolerance, no number of
replications decides a mean that sits on its limit: such a candidate stays `undecided` at
`max_replications`, and the result says so. Bonferroni over the looks is conservative (a
design far from its limits is decided at the first look all the same).

`check_feasibility` is pure: it asks `draw(candidates, start, stop)` for the KPIs'
observations and never simulates, like `twin.optimisation.selection.kn`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import stdtrit

Decision = Literal["met", "broken", "undecided"]

# draw(candidates, start, stop) -> observations of shape (candidates, stop - start, constraints)
DrawKpis = Callable[[Sequence[int], int, int], np.ndarray]


@dataclass(frozen=True)
class Limits:
    """Bounds on a KPI's mean, min <= mean <= max (either may be None)."""

    min: float | None = None
    max: float | None = None

    @property
    def sides(self) -> int:
        return (self.min is not None) + (self.max is not None)


@dataclass(frozen=True)
class Check:
    """One constraint of one candidate at the look that decided it (or the last look).

    `lower` is the one-sided lower bound of the mean (None without a min), `upper` the upper
    bound (None without a max); a KPI without a value in some replication counts as broken,
    as in the search, with mean None.
    """

    decision: Decision
    mean: float | None
    lower: float | None
    upper: float | None
    replications: int

    @property
    def established(self) -> bool:
        """The constraint holds at the stated confidence."""
        return self.decision == "met"


@dataclass
class FeasibilityResult:
    """Every candidate's checks (`checks[i][j]`: candidate i, constraint j), the looks, the limits
    (m) and the error α′ of each bound, α′ = α / (k · m · L)."""

    checks: list[list[Check]]
    looks: list[int]
    sides: int
    level: float
    alpha: float
    replications: list[int]

    def broken(self, i: int) -> bool:
        """Candidate i is shown to break a constraint (at confidence 1 − α)."""
        return any(check.decision == "broken" for check in self.checks[i])

    def met(self, i: int) -> bool:
        """Candidate i is shown to meet every constraint (at confidence 1 − α)."""
        return all(check.established for check in self.checks[i])

    def decision(self, i: int) -> Decision:
        """`broken` if one constraint is, `met` if all are, else `undecided`."""
        return "broken" if self.broken(i) else "met" if self.met(i) else "undecided"


def looks(n0: int, max_replications: int) -> list[int]:
    """The replication counts at which the constraints are tested: n0, 2·n0, 4·n0, …, max_replications."""
    out = []
    n = n0
    while n < max_replications:
        out.append(n)
        n *= 2
    out.append(max_replications)
    return out


def check_one(values: np.ndarray, limits: Limits, level: float) -> Check:
    """Test one constraint on n observations with one-sided bounds that each err with probability `level`."""
    n = len(values)
    if np.isnan(values).any():
        return Check("broken", None, None, None, n)
    mean = float(values.mean())
    half = float(stdtrit(n - 1, 1 - level)) * float(values.std(ddof=1)) / math.sqrt(n)
    lower, upper = mean - half, mean + half
    inside = (limits.min is None or lower >= limits.min) and (limits.max is None or upper <= limits.max)
    outside = (limits.max is not None and lower > limits.max) or (
        limits.min is not None and upper < limits.min
    )
    decision: Decision = "met" if inside else "broken" if outside else "undecided"
    return Check(
        decision,
        mean,
        lower if limits.min is not None else None,
        upper if limits.max is not None else None,
        n,
    )


def check_feasibility(
    draw: DrawKpis, k: int, limits: Sequence[Limits], *, alpha: float, n0: int, max_replications: int
) -> FeasibilityResult:
    """Test every candidate's constraints at the looks (see the module docstring)."""
    schedule = looks(n0, max_replications)
    sides = sum(limit.sides for limit in limits)
    level = alpha / (k * sides * len(schedule))
    data = [np.empty((0, len(limits))) for _ in range(k)]
    checks: list[list[Check | None]] = [[None] * len(limits) for _ in range(k)]
    open_ = list(range(k))  # candidates with an undecided constraint and none broken
    start = 0
    for look in schedule:
        if not open_:
            break
        more = np.asarray(draw(open_, start, look), dtype=float).reshape(
            len(open_), look - start, len(limits)
        )
        for row, i in enumerate(open_):
            data[i] = np.concatenate([data[i], more[row]])
            for j, limit in enumerate(limits):
                check = checks[i][j]
                if check is None or check.decision == "undecided":
                    checks[i][j] = check_one(data[i][:, j], limit, level)
        open_ = [
            i
            for i in open_
            if not any(c is not None and c.decision == "broken" for c in checks[i])
            and any(c is not None and c.decision == "undecided" for c in checks[i])
        ]
        start = look
    done = [[check for check in row if check is not None] for row in checks]
    return FeasibilityResult(done, schedule, sides, level, alpha, [len(d) for d in data])


def describe(kpi: str, limits: Limits) -> str:
    """'lead_time_mean_s <= 900', '0.8 <= oee', '1 <= wip_mean <= 6'."""
    if limits.min is not None and limits.max is not None:
        return f"{limits.min:g} <= {kpi} <= {limits.max:g}"
    if limits.max is not None:
        return f"{kpi} <= {limits.max:g}"
    return f"{kpi} >= {limits.min:g}"


def statement(result: FeasibilityResult, names: Sequence[str], chosen: int | None) -> str:
    """What the check states, in words: its guarantee, the candidates it dropped, and the chosen
    candidate's constraints (`names`, one per constraint, as from `describe`)."""
    k = len(result.checks)
    confidence = f"{1 - result.alpha:.0%}"
    text = (
        "constraints on KPIs, tested on the selection stage's replications (one-sided Student-t bounds "
        f"after {', '.join(map(str, result.looks))} replications, Bonferroni over {k} candidates x "
        f"{result.sides} limits x {len(result.looks)} looks): with probability >= {confidence}, no "
        "constraint of any candidate is declared met when it is broken, or broken when it is met"
    )
    dropped = sum(result.broken(i) for i in range(k))
    if dropped:
        text += f"; {dropped} of {k} candidates shown to break one were dropped before KN"
    if chosen is None:
        return text + "; no candidate is left"
    parts = []
    for name, check in zip(names, result.checks[chosen], strict=True):
        if check.established:
            parts.append(f"{name} established at {confidence}")
        else:
            parts.append(f"{name} not established ({check.decision} after {check.replications} replications)")
    return text + "; the chosen design: " + ", ".join(parts)

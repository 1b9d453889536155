"""Which engine runs a line: the SimPy event simulation, or the flow engine where the line allows it.

`engine: auto` (the default in line files) takes the flow engine whenever the line
allows it and nobody observes the run, since it gives the same answers many times
sooner; `simpy` always runs the event simulation; `flow` insists on the flow engine
and fails with one line naming the field that rules it out. The record says which
engine ran (`"engine": "flow"` or `"simpy"`).

    >>> run_line(load_line("simulations/lines/demonstrator.yaml")).kpis["engine"]
    'simpy'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from twin.engine import Observer, RunResult, simulate
from twin.line import Line, LineError
from twin.state import LineState

Engine = Literal["auto", "simpy", "flow"]
ENGINES = ("auto", "simpy", "flow")


def choose_engine(
    line: Line, engine: str | None = None, *, observed: bool = False, source: str | None = None
) -> Literal["simpy", "flow"]:
    """The engine that runs `line`: `engine` if given, else the line's own `engine` field.

    Errors are one-line LineErrors prefixed with `source` (the line file) when given.
    """
    prefix = f"{source}: " if source else ""
    wanted = line.engine if engine is None else engine
    if wanted not in ENGINES:
        raise LineError(f"{prefix}engine: must be one of {', '.join(ENGINES)}, got {wanted!r}")
    if wanted == "simpy":
        return "simpy"
    from twin.flow import check_flow, flow_obstacle  # the flow engine loads numba: only when asked

    if wanted == "flow":
        check_flow(line, source)
        if observed:
            raise LineError(f"{prefix}engine: flow cannot report to an observer; use simpy or auto")
        return "flow"
    return "simpy" if observed or flow_obstacle(line) is not None else "flow"


def run_line(
    line: Line,
    *,
    engine: str | None = None,
    seed: int | None = None,
    horizon: float | None = None,
    warmup: float | None = None,
    observer: Observer | None = None,
    state: LineState | None = None,
    setpoints: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run `line` once with the engine `choose_engine` picks; arguments override the line's own.

    `state`: start from it (`twin.state`) instead of from an empty line. `setpoints`: written at
    time 0 (`twin.setpoints`); the SimPy engine applies them.
    """
    wanted = line.engine if engine is None else engine
    if setpoints:
        if engine == "flow":
            raise LineError("engine: flow cannot take setpoints; use simpy or auto")
        result = simulate(
            line,
            seed=seed,
            horizon=horizon,
            warmup=warmup,
            observer=observer,
            state=state,
            setpoints=setpoints,
        )
        if wanted == "auto":
            result.kpis["engine_fallback"] = "setpoints written during the run need the simpy engine"
        return result
    if choose_engine(line, engine, observed=observer is not None) == "flow":
        from twin.flow import simulate_flow

        return simulate_flow(line, seed=seed, horizon=horizon, warmup=warmup, state=state)
    result = simulate(line, seed=seed, horizon=horizon, warmup=warmup, observer=observer, state=state)
    if wanted == "auto":
        result.kpis["engine_fallback"] = fallback_reason(line, observed=observer is not None)
    return result


def fallback_reason(line: Line, *, observed: bool = False) -> str | None:
    """Why `engine: auto` runs `line` on the SimPy engine (None: it runs on the flow engine)."""
    if observed:
        return "an observer (the virtual PLCs, a recorder) watches the run: flow cannot report to one"
    from twin.flow import flow_obstacle

    return flow_obstacle(line)

"""Which engine runs a line: the flow engine, the compiled event engine, or the SimPy event simulation.

`engine: auto` (the default in line files) takes the fastest engine that gives the SimPy
engine's answers for the line and reports to nobody: the flow engine (`twin.flow`: chains of
single machines), else the compiled event engine (`twin.event`: every other line, with parallel
machines, CONWIP, calendar-time failures, repair crews, maintenance, switch-off, and lines as
networks), else the SimPy engine (`twin.engine`: setpoints and observers). `simpy`, `event` and
`flow` insist on one and fail with one line naming the field that rules it out. The record
says which engine ran (`"engine"`) and, under `auto`, why not a faster one
(`"engine_fallback"`, one line; null when the flow engine ran).

    >>> run_line(load_line("simulations/lines/demonstrator.yaml")).kpis["engine"]
    'event'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from twin.engine import Observer, RunResult, simulate
from twin.line import Line, LineError
from twin.state import LineState

Engine = Literal["auto", "simpy", "event", "flow"]
ENGINES = ("auto", "simpy", "event", "flow")
Chosen = Literal["simpy", "event", "flow"]


def choose_engine(
    line: Line,
    engine: str | None = None,
    *,
    observed: bool = False,
    source: str | None = None,
) -> Chosen:
    """The engine that runs `line`: `engine` if given, else the line's own `engine` field.

    Errors are one-line LineErrors prefixed with `source` (the line file) when given.
    """
    prefix = f"{source}: " if source else ""
    wanted = line.engine if engine is None else engine
    if wanted not in ENGINES:
        raise LineError(f"{prefix}engine: must be one of {', '.join(ENGINES)}, got {wanted!r}")
    if wanted == "simpy":
        return "simpy"
    # the compiled engines load numba: only when asked
    from twin.event import check_event, event_obstacle
    from twin.flow import check_flow, flow_obstacle

    if wanted == "flow":
        check_flow(line, source)
        if observed:
            raise LineError(f"{prefix}engine: flow cannot report to an observer; use simpy or auto")
        return "flow"
    if wanted == "event":
        check_event(line, source)
        if observed:
            raise LineError(f"{prefix}engine: event cannot report to an observer; use simpy or auto")
        return "event"
    if observed:
        return "simpy"
    if flow_obstacle(line) is None:
        return "flow"
    if event_obstacle(line) is None:
        return "event"
    return "simpy"


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
        if engine in ("flow", "event"):
            raise LineError(f"engine: {engine} cannot take setpoints; use simpy or auto")
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
    observed = observer is not None
    chosen = choose_engine(line, engine, observed=observed)
    if chosen == "flow":
        from twin.flow import simulate_flow

        return simulate_flow(line, seed=seed, horizon=horizon, warmup=warmup, state=state)
    if chosen == "event":
        from twin.event import simulate_event

        result = simulate_event(line, seed=seed, horizon=horizon, warmup=warmup, state=state)
    else:
        result = simulate(line, seed=seed, horizon=horizon, warmup=warmup, observer=observer, state=state)
    if wanted == "auto":
        result.kpis["engine_fallback"] = fallback_reason(line, observed=observed)
    return result


def fallback_reason(line: Line, *, observed: bool = False) -> str | None:
    """Why `engine: auto` does not run `line` on the flow engine, in one line (None: it does).

    For a line the event engine runs, the flow engine's obstacle; for one the SimPy engine runs,
    the event engine's (an observer, or the field that rules it out).
    """
    if observed:
        return "an observer (the virtual PLCs, a recorder) watches the run: compiled engines report to none"
    from twin.event import event_obstacle
    from twin.flow import flow_obstacle

    flow = flow_obstacle(line)
    if flow is None:
        return None
    return event_obstacle(line) or flow

"""The twin's advice on the running line: evaluated from the state now, approved, written, recorded, scored.

`fabbrica twin advise` and the live twin's `advise:` block both go this way:

1. the state at `at` is rebuilt from the history (`twinloop.state.reconstruct_state`);
2. the setpoints now are read from the PLC's `Objects/<Line>/Release` when the PLC is configured
   (`apply:`), else from the history (the connectors record `Release` as a `machine` point of
   station `Release`), else taken from the line file (`current_setpoints`);
3. every candidate of the action space (`twinloop.advise_config`) is run from that state with
   common random numbers and the best is chosen by `twin.advice.advise`'s rules;
4. an action is written only after an approval (a prompt, or an operator's `Approve` on the PLC's
   `Objects/<Line>/Advice`) or, in the live twin's `auto` mode, within the config's limits at most
   once per `every`: over a signed and encrypted session as the configured operator
   (`connectors.opcua.write.PlcWriter`);
5. each step (advised, proposed, approved, rejected, applied, refused) is a point of measurement
   `advice`, and after the horizon `advice_score` compares what the line then did with the
   forecasts with and without the action (`realised`).

The history gives what it can of the outcome: parts out and throughput (the exit station's
`PartsProduced`), mean WIP (the stations' `OccupancySeconds`, part-seconds held) and the mean
lead time from both by Little's law.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from asyncua import ua

from connectors.common.points import Point, encode
from connectors.opcua.write import PlcWriter, WriteError
from connectors.sinks.base import SinkUnavailable
from connectors.sinks.config import SinkSettings
from connectors.sinks.registry import open_writer
from foundation.errors import InputError
from twin.advice import Action, Advice, Objective, Progress, advise, grid
from twin.line import Line
from twin.setpoints import SETPOINTS, Limits, available, initial
from twin.state import LineState
from twinloop.advise_config import AdviceSpec, AdviseSetup, ApplySpec, axes

log = logging.getLogger(__name__)

RELEASE = "Release"  # Objects/<Line>/Release: the setpoints
ADVICE = "Advice"  # Objects/<Line>/Advice: the proposal and its approval
PRODUCED = "PartsProduced"
OCCUPANCY_SECONDS = "OccupancySeconds"
# the line KPIs the history gives after the horizon, for `advice_score`
REALISED = ("parts_out", "throughput_per_hour", "wip_mean", "lead_time_mean_s")
LOOKBACK_S = (900.0, 86400.0, None)  # how far back the setpoints are looked for in the history


class AdviseError(InputError):
    """The advice cannot be made or applied: the PLC is away or refuses, the state cannot be rebuilt."""


def _ns(instant: datetime) -> int:
    return int(instant.timestamp() * 1_000) * 1_000_000  # whole milliseconds, as Grafana shows them


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def describe(action: Mapping[str, Any] | None) -> str:
    """`release.interarrival.mean = 24` (several joined by commas), or `no action`."""
    if not action:
        return "no action"
    return ", ".join(f"{path} = {value:g}" if not isinstance(value, bool) else f"{path} = {value}"
                     for path, value in action.items())  # fmt: skip


# -- the setpoints now -----------------------------------------------------------------------------


def line_object(line: Line, apply: ApplySpec | None) -> str:
    """The line's object below Objects on its PLC (`apply.line_object`, default the line's name)."""
    return apply.line_object if apply is not None and apply.line_object else line.name


def history_setpoints(query: Callable[..., pd.DataFrame], line: Line, at: datetime) -> Action:
    """The setpoints the history last recorded at or before `at` (those it has; {} when none)."""
    end = _ns(at) + 1
    variables = {SETPOINTS[path].variable: path for path in available(line)}
    for lookback in LOOKBACK_S:
        start = 0 if lookback is None else end - int(lookback * 1e9)
        frame = query("machine", start, end)
        if frame.empty or "station" not in frame:
            continue
        rows = frame[frame["station"] == RELEASE]
        if "line" in rows:
            rows = rows[rows["line"] == line.name]
        found: Action = {}
        for variable, path in variables.items():
            if variable in rows:
                values = rows.sort_values("time", kind="stable")[variable].dropna()
                if len(values):
                    found[path] = SETPOINTS[path].kind(values.iloc[-1])
        if len(found) == len(variables):
            return found
        if lookback is None:
            return found
    return {}


async def plc_setpoints(plc: PlcWriter, line: Line, name: str) -> Action:
    """The setpoints the PLC shows now under `Objects/<name>/Release`."""
    values: Action = {}
    for path in available(line):
        setpoint = SETPOINTS[path]
        values[path] = setpoint.kind(await plc.read((name, RELEASE, setpoint.variable)))
    return values


def current_setpoints(
    line: Line, at: datetime, query: Callable[..., pd.DataFrame] | None, plc: Action | None
) -> tuple[Action, str]:
    """The setpoints now and where they come from: the PLC's, else the history's, else the line file's."""
    values = initial(line)
    if plc is not None:
        return {**values, **plc}, "plc"
    if query is not None:
        recorded = history_setpoints(query, line, at)
        if recorded:
            return {**values, **recorded}, "history"
    return values, "line file"


async def write_action(plc: PlcWriter, name: str, action: Mapping[str, Any]) -> None:
    """Write every setpoint of `action` to `Objects/<name>/Release` (WriteRefused on the first refused)."""
    for path, value in action.items():
        await plc.write((name, RELEASE, SETPOINTS[path].variable), value)


async def propose(plc: PlcWriter, name: str, advice: Advice) -> int:
    """Put the advice on the PLC's `Advice` object for an operator to decide; the proposal's id."""
    text = json.dumps(advice.to_json(False))
    found = await plc.call((name, ADVICE), "Propose", ua.Variant(text, ua.VariantType.String))
    return int(found)


async def decision(plc: PlcWriter, name: str) -> tuple[int, str, str]:
    """The PLC's current proposal: (ProposalId, Status, DecidedBy)."""
    proposal_id = int(await plc.read((name, ADVICE, "ProposalId")))
    status = str(await plc.read((name, ADVICE, "Status")))
    decided_by = str(await plc.read((name, ADVICE, "DecidedBy")))
    return proposal_id, status, decided_by


# -- the evaluation --------------------------------------------------------------------------------


def evaluate(
    line: Line,
    state: LineState,
    spec: AdviceSpec,
    objective: Objective,
    limits: Limits,
    current: Action,
    progress: Progress | None = None,
) -> Advice:
    """The advice from `state` with the setpoints `current`: the candidates of `spec` within `limits`."""
    actions = grid(line, axes(line, spec, current, limits), limits, current)
    started = initial(line)
    changed = {path: value for path, value in current.items() if started.get(path) != value}
    return advise(
        line,
        state,
        actions=actions,
        objective=objective,
        horizon=spec.horizon,
        replications=spec.replications,
        seed=spec.seed,
        workers=spec.workers,
        progress=progress,
        current=changed,
    )


def candidates_count(line: Line, spec: AdviceSpec, limits: Limits, current: Action) -> int:
    return len(grid(line, axes(line, spec, current, limits), limits, current))


# -- points ----------------------------------------------------------------------------------------


@dataclass
class Event:
    """One step of an advice: `advised` (with or without an action), `proposed`, `approved`,
    `rejected`, `applied` (written to the PLC, or by `auto`) or `refused` (the PLC said no)."""

    decision: str
    at: datetime
    user: str = ""
    applied: bool = False
    note: str = ""


def advice_point(tag: str, advice: Advice, event: Event, current: Mapping[str, Any]) -> Point:
    """One `advice` point (docs/advise.md): the action, its gain, the objective, who, and whether applied."""
    action = advice.action or {}
    unit_gain = f"{advice.gain['mean']:.4g} ± {advice.gain['ci95']:.2g}"
    text = f"{event.decision}: {describe(action)}"
    if action:
        text += f" (gain {unit_gain} on {advice.objective.kpi})"
    if event.user:
        text += f" by {event.user}"
    if event.note:
        text += f": {event.note}"
    fields: dict[str, Any] = {
        "action": json.dumps(action, sort_keys=True),
        "current": json.dumps(dict(current), sort_keys=True),
        "gain_mean": float(advice.gain["mean"]),
        "gain_ci95": float(advice.gain["ci95"]),
        "objective": advice.objective.describe(),
        "decision": event.decision,
        "user": event.user,
        "applied": bool(event.applied),
        "reason": advice.reason,
        "horizon_s": float(advice.horizon),
        "text": text,
    }
    return Point("advice", {"line": tag}, fields, _ns(event.at))


def stamped(events: list[Event]) -> list[Event]:
    """The events with distinct millisecond timestamps (one series per line: the same instant would
    overwrite a point), each at least 1 ms after the one before."""
    last = None
    for event in events:
        if last is not None and _ns(event.at) <= last:
            event.at = datetime.fromtimestamp((last + 1_000_000) / 1e9, UTC)
        last = _ns(event.at)
    return events


async def send(sink: SinkSettings, points: list[Point], base: Path | None = None) -> int:
    """Write `points` once; the number refused. SinkUnavailable when the sink is away."""
    writer = open_writer(sink, base or Path.cwd())
    rejected = 0
    try:
        await writer.open()
        for start in range(0, len(points), sink.batch_size):
            batch = points[start : start + sink.batch_size]
            rejected += await writer.write(encode(batch), len(batch))
    finally:
        await writer.close()
    return rejected


# -- the outcome after the horizon ------------------------------------------------------------------


def _last_at(rows: pd.DataFrame, field: str, at_ns: int) -> tuple[float, int] | None:
    """The last value of `field` in `rows` stamped at or before `at_ns`, and its time (ns)."""
    if field not in rows:
        return None
    shown = rows[(rows["time"].astype("int64") <= at_ns) & rows[field].notna()] if len(rows) else rows
    if shown.empty:
        return None
    last = shown.iloc[-1]
    return float(last[field]), int(pd.Timestamp(last["time"]).value)


def realised(
    query: Callable[..., pd.DataFrame], line: Line, start: datetime, end: datetime, speed: float
) -> dict[str, float]:
    """What the line did from `start` to `end` (wall instants; `speed` line seconds per wall second):
    parts out, throughput per hour, mean WIP and mean lead time (Little: WIP over throughput).
    A KPI the history cannot give is left out."""
    begin_ns, end_ns = _ns(start), _ns(end) + 1
    frame = query("machine", begin_ns - int(3600e9), end_ns)
    if frame.empty or "station" not in frame:
        return {}
    if "line" in frame:
        frame = frame[frame["line"] == line.name]
    frame = frame.sort_values("time", kind="stable")
    frame = frame.assign(time=pd.to_datetime(frame["time"], utc=True))
    frame["time"] = frame["time"].astype("int64")
    horizon = (end - start).total_seconds() * speed
    found: dict[str, float] = {}
    exit_rows = frame[frame["station"] == line.stations[-1].name]
    a, b = _last_at(exit_rows, PRODUCED, begin_ns), _last_at(exit_rows, PRODUCED, end_ns)
    if a is not None and b is not None and horizon > 0:
        parts = b[0] - a[0] if b[0] >= a[0] else b[0]
        found["parts_out"] = parts
        found["throughput_per_hour"] = parts / horizon * 3600
    wip = 0.0
    for station in line.stations:
        rows = frame[frame["station"] == station.name]
        first, last = _last_at(rows, OCCUPANCY_SECONDS, begin_ns), _last_at(rows, OCCUPANCY_SECONDS, end_ns)
        if first is None or last is None or last[1] <= first[1]:
            wip = math.nan
            break
        wip += (last[0] - first[0]) / ((last[1] - first[1]) / 1e9 * speed)
    if not math.isnan(wip):
        found["wip_mean"] = wip
        rate = found.get("throughput_per_hour")
        if rate:
            found["lead_time_mean_s"] = wip / (rate / 3600)
    return found


@dataclass
class Made:
    """An advice the live twin remembers until it is scored: its instant, horizon and forecasts."""

    time: str  # ISO instant of the advice (the state's)
    horizon_s: float  # line seconds
    action: dict[str, Any]
    applied: bool
    forecasts: dict[str, dict[str, float | None]] = field(default_factory=dict)  # KPI -> with/without

    @classmethod
    def of(cls, advice: Advice, at: datetime, applied: bool) -> Made:
        forecasts: dict[str, dict[str, float | None]] = {}
        for kpi in REALISED:
            chosen, baseline = advice.chosen.kpi(kpi), advice.baseline.kpi(kpi)
            forecasts[kpi] = {
                "with": _finite(chosen["mean"]),
                "with_ci95": _finite(chosen["ci95"]),
                "without": _finite(baseline["mean"]),
                "without_ci95": _finite(baseline["ci95"]),
            }
        return cls(_iso(at), float(advice.horizon), dict(advice.action or {}), applied, forecasts)

    @property
    def instant(self) -> datetime:
        return datetime.fromisoformat(self.time.replace("Z", "+00:00"))

    def due(self, speed: float) -> datetime:
        """The wall instant the horizon ends."""
        return self.instant + timedelta(seconds=self.horizon_s / speed)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def score_points(tag: str, made: Made, outcome: Mapping[str, float]) -> list[Point]:
    """`advice_score`, one point per KPI the history gave, at the advice's instant (docs/advise.md)."""
    points = []
    for kpi, value in outcome.items():
        forecast = made.forecasts.get(kpi) or {}
        fields: dict[str, Any] = {"realised": float(value), "applied": bool(made.applied)}
        fields["action"] = json.dumps(made.action, sort_keys=True)
        fields["horizon_s"] = made.horizon_s
        for name in ("with", "with_ci95", "without", "without_ci95"):
            if forecast.get(name) is not None:
                fields[name] = float(forecast[name])  # type: ignore[arg-type]
        if forecast.get("with") is not None:
            fields["error"] = float(value) - float(forecast["with"])  # type: ignore[arg-type]
        points.append(Point("advice_score", {"line": tag, "kpi": kpi}, fields, _ns(made.instant)))
    return points


# -- fabbrica twin advise --------------------------------------------------------------------------

Approve = Callable[[Advice], tuple[bool, str]]  # the advice -> (approved, by whom)


@dataclass
class Outcome:
    """What one `fabbrica twin advise` did: the advice, the setpoints it started from, the steps."""

    advice: Advice
    at: datetime
    current: Action
    current_from: str
    events: list[Event]
    applied: bool = False
    sink_message: str = ""

    def to_json(self) -> dict[str, Any]:
        return self.advice.to_json(self.applied)


def run_advice(
    setup: AdviseSetup,
    *,
    at: datetime | None = None,
    apply: bool = False,
    approve: Approve | None = None,
    progress: Callable[[int], Callable[[int], None] | None] | None = None,
) -> Outcome:
    """The advice at `at` (default: the config's `at`, else now); with `apply`, written after
    `approve` says yes. Every step goes to the sink; a sink that is away is said in `sink_message`."""
    from twinloop.state import reconstruct_state

    config = setup.config
    instant = at or config.at or datetime.now(UTC)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    query = setup.open_query()
    state = reconstruct_state(query, setup.line, instant, speed=config.speed)
    name = line_object(setup.line, config.apply)
    if apply and config.apply is None:
        raise AdviseError(f"--apply: {setup.path} has no apply: section (the PLC to write to)")
    plc_values = None
    if config.apply is not None:
        plc_values = asyncio.run(_read_plc(config.apply, setup.base, setup.line, name))
    current, origin = current_setpoints(setup.line, instant, query, plc_values)
    total = candidates_count(setup.line, config, setup.limits, current) * config.replications
    advance = progress(total) if progress is not None else None
    advice = evaluate(setup.line, state, config, setup.objective, setup.limits, current, advance)
    events = [Event("advised", instant, note=advice.reason)]
    outcome = Outcome(advice, instant, current, origin, events)
    if apply and advice.action:
        assert config.apply is not None and approve is not None
        approved, who = approve(advice)
        events.append(Event("approved" if approved else "rejected", datetime.now(UTC), who))
        if approved:
            try:
                asyncio.run(_write(config.apply, setup.base, name, advice.action))
            except WriteError as exc:
                events.append(Event("refused", datetime.now(UTC), config.apply.user, note=str(exc)))
            else:
                outcome.applied = True
                events.append(Event("applied", datetime.now(UTC), config.apply.user, applied=True))
    points = [advice_point(setup.line_tag, advice, event, current) for event in stamped(events)]
    try:
        rejected = asyncio.run(send(setup.sink, points))
        outcome.sink_message = f"advice: {len(points) - rejected} points written to {setup.sink.type}"
    except (SinkUnavailable, OSError, TimeoutError) as exc:
        outcome.sink_message = f"advice: not written to the sink: {exc}"
    return outcome


async def _read_plc(target: ApplySpec, base: Path, line: Line, name: str) -> Action:
    try:
        async with PlcWriter(target, base) as plc:
            return await plc_setpoints(plc, line, name)
    except WriteError as exc:
        raise AdviseError(f"apply: {exc}") from None


async def _write(target: ApplySpec, base: Path, name: str, action: Mapping[str, Any]) -> None:
    async with PlcWriter(target, base) as plc:
        await write_action(plc, name, action)


def who_am_i() -> str:
    """The name of the person at the terminal, for the approval's `user`."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- the live twin's advice -------------------------------------------------------------------------


@dataclass
class Pending:
    """A proposal on the PLC waiting for an operator: its id, the advice, the setpoints it started from."""

    proposal_id: int
    advice: Advice
    current: Action
    made: Made


class LiveAdvisor:
    """The `advise:` block of the live twin: one `tick(at)` per tick of the service (never raises).

    `send(points)`, `state_at(at)` and `read(what, function, *args)` are the service's own: the
    sink writer, the rebuilt state, and a read in a thread with the service's timeout.
    """

    def __init__(
        self,
        setup: Any,  # twinloop.live_config.LiveSetup (not imported: live_config imports this package)
        query: Callable[..., pd.DataFrame],
        send: Callable[[list[Point]], Any],
        state_at: Callable[[datetime], LineState],
        read: Callable[..., Any],
    ) -> None:
        assert setup.config.advise is not None and setup.config.advise.apply is not None
        self.setup = setup
        self.spec = setup.config.advise
        self.target: ApplySpec = setup.config.advise.apply
        self.line: Line = setup.line
        self.name = line_object(self.line, self.target)
        self.query = query
        self.send = send
        self.state_at = state_at
        self.read = read
        self.speed: float = setup.config.speed
        self.last_advice: datetime | None = None
        self.last_applied: datetime | None = None
        self.pending: Pending | None = None
        self.made: list[Made] = []  # advices waiting for their score
        self.history: list[tuple[str, Advice | None, Event]] = []  # every step taken (for tests, logs)

    async def tick(self, at: datetime) -> str:
        """Score, follow a pending proposal, and advise when `every` has passed; what was done."""
        done: list[str] = []
        for step in (self._score, self._follow, self._advise):
            try:
                text = await step(at)
            except Exception as exc:
                text = f"skipped: {' '.join(str(exc).split()) or type(exc).__name__}"
                log.warning("advice at %s %s", _iso(at), text)
            if text:
                done.append(text)
        return "; ".join(done)

    # -- the steps --------------------------------------------------------------------------------
    async def _score(self, at: datetime) -> str:
        delay = timedelta(seconds=self.setup.config.score_delay)
        scored = 0
        for made in list(self.made):
            if made.due(self.speed) + delay > at:
                continue
            outcome = await self.read("source", realised, self.query, self.line, made.instant,
                                      made.due(self.speed), self.speed)  # fmt: skip
            self.made.remove(made)
            if not outcome:
                log.warning("advice of %s cannot be scored: nothing recorded after it", made.time)
                continue
            await self.send(score_points(self.setup.line_tag, made, outcome))
            scored += 1
            kpi = self.setup.objective.kpi if self.setup.objective else ""
            log.info(
                "advice of %s scored: %s realised %s, forecast %s with the action, %s without",
                made.time, kpi, _shown(outcome.get(kpi)), _shown((made.forecasts.get(kpi) or {}).get("with")),
                _shown((made.forecasts.get(kpi) or {}).get("without")),
            )  # fmt: skip
        return f"{scored} scored" if scored else ""

    async def _follow(self, at: datetime) -> str:
        """An operator's decision on the pending proposal: write it when approved."""
        pending = self.pending
        if pending is None:
            return ""
        async with PlcWriter(self.target, self.setup.base) as plc:
            proposal_id, status, decided_by = await decision(plc, self.name)
            if proposal_id != pending.proposal_id or status in ("none", "pending"):
                if proposal_id != pending.proposal_id:
                    self.pending = None  # superseded on the PLC
                return ""
            self.pending = None
            events = [Event(status if status != "applied" else "approved", at, decided_by)]
            if status == "approved":
                try:
                    await write_action(plc, self.name, pending.advice.action or {})
                except WriteError as exc:
                    events.append(Event("refused", _later(at), self.target.user, note=str(exc)))
                else:
                    events.append(Event("applied", _later(at), self.target.user, applied=True))
                    pending.made.applied = True
                    self.last_applied = at
        await self._record(pending.advice, events, pending.current)
        return ", ".join(f"{event.decision}" for event in events)

    async def _advise(self, at: datetime) -> str:
        every = timedelta(seconds=self.spec.every)
        if self.last_advice is not None and at < self.last_advice + every:
            return ""
        began = time.monotonic()
        state = await self.read("source", self.state_at, at)
        self.last_advice = at  # from here on, the next advice waits `every`
        # one session for the read, the evaluation and the write: a handshake per advice
        async with PlcWriter(self.target, self.setup.base) as plc:
            current = {**initial(self.line), **await plc_setpoints(plc, self.line, self.name)}
            advice = await asyncio.to_thread(
                evaluate, self.line, state, self.spec, self.setup.objective, self.setup.limits, current
            )
            made = Made.of(advice, at, False)
            self.made.append(made)
            events = [Event("advised", at, note=advice.reason)]
            now = at + timedelta(seconds=time.monotonic() - began)  # on the service's clock
            if advice.action and self.spec.mode == "auto":
                events += await self._auto(plc, advice, at, now, made)
            elif advice.action:
                proposal_id = await propose(plc, self.name, advice)
                self.pending = Pending(proposal_id, advice, current, made)
                note = f"proposal {proposal_id}"
                events.append(Event("proposed", now, self.target.user, note=note))
        await self._record(advice, events, current)
        text = f"{describe(advice.action)} ({advice.reason})"
        log.info(
            "advice at %s: %s; %s", _iso(at), text, ", ".join(event.decision for event in events[1:]) or "-"
        )
        return text

    async def _auto(
        self, plc: PlcWriter, advice: Advice, at: datetime, now: datetime, made: Made
    ) -> list[Event]:
        """`auto`: write the action now, unless the advice of a change came less than `every` before
        this one's (`at`: this advice's instant; `now`: the write's)."""
        every = timedelta(seconds=self.spec.every)
        if self.last_applied is not None and at < self.last_applied + every:
            return [Event("held", now, note=f"one change per {self.spec.every:g} s")]
        for path, value in (advice.action or {}).items():
            self.setup.limits.check(path, value)  # candidates are within them: a guard, not a filter
        try:
            await write_action(plc, self.name, advice.action or {})
        except WriteError as exc:
            return [Event("refused", now, self.target.user, note=str(exc))]
        made.applied = True
        self.last_applied = at
        return [Event("applied", now, self.target.user, applied=True, note="auto")]

    async def _record(self, advice: Advice, events: list[Event], current: Action) -> None:
        for event in stamped(events):
            self.history.append((event.decision, advice, event))
        await self.send([advice_point(self.setup.line_tag, advice, event, current) for event in events])


def _later(at: datetime) -> datetime:
    return at + timedelta(milliseconds=1)


def _shown(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"

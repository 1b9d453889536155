"""The live twin: every `every`, the shift forecast from the line's state now, written as points.

`fabbrica twin live CONFIG.yaml` runs `LiveTwin.run`, one asyncio loop. Each tick:

1. scores the shifts that ended (`score_delay` ago): the parts the shift really made, against
   every forecast made during it, as `forecast_score` points; then forgets them;
2. finds the shift the wall clock is in (`twinloop.live_config.Calendar`); none: nothing to do;
3. checks that the line sent something in the last `stale_after` and reconstructs its state
   now (`twinloop.state.reconstruct_state`, in a thread: the history readers block);
4. forecasts to the shift end in a worker process (`twin.forecast.forecast`), killed when the
   `deadline` passes;
5. writes `forecast` (now) and `forecast_path` (the fan, at future instants) through the sink's
   writer (`connectors.sinks.registry.open_writer`), and remembers the forecast in memory and
   in the state file, so a restart does not lose the shift's scores.

With `advise:` (twinloop.advise_config.LiveAdvice) each tick also runs the twin's advice
(`twinloop.advise`, `LiveAdvisor`): every `advise.every` it advises from the state now and, in
`approve` mode, proposes the action on the PLC's `Advice` object and writes it once an operator
approved it there; in `auto` mode it writes it at once. After the advice's horizon it scores it
(`advice_score`). A fault of the advice is logged and leaves the forecast alone.

A tick that cannot read the source, reach the sink, finish its forecast in time or find
fresh data from the line is skipped with one log line; the next tick starts on time anyway.
A tick that comes while the previous one still runs is skipped and logged: the loop never
waits for a slow forecast. Ticks fall on multiples of `every` on the wall clock.

The counts are parts made in the shift: `produced` at the tick minus `produced` at the shift
start (the exit station's counter in the reconstructed state). Forecast quantiles are the
parts the shift will have made by its end, `produced` included, so they compare directly
with the actual output that scores them. Points and their timestamps: docs/live-twin.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.common.points import Point, encode
from connectors.sinks.base import SinkUnavailable
from connectors.sinks.registry import open_writer
from foundation.errors import InputError
from twin.line import Line
from twin.state import LineState, StationState
from twinloop.live_config import LiveSetup, ShiftWindow

if TYPE_CHECKING:
    from twinloop.advise import LiveAdvisor

log = logging.getLogger(__name__)

STATE_FORMAT = "fabbrica-live/1"
READ_TIMEOUT = 30.0  # seconds a tick waits at least for one read of the source
QUANTILES = ("p10", "p50", "p90")
Clock = Callable[[], datetime]


class TickSkipped(Exception):
    """This tick does nothing more: the message (one line) says why."""


class LiveStateError(InputError):
    """The live twin's state file cannot be read: one line naming the file."""


def _ns(instant: datetime) -> int:
    return int(instant.timestamp() * 1_000) * 1_000_000  # whole milliseconds, as Grafana shows them


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stamp(instant: datetime) -> str:
    """An instant in the log lines: UTC, to the second."""
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clock() -> datetime:
    return datetime.now(UTC)


# -- what the service remembers ----------------------------------------------------------------


@dataclass
class Made:
    """One forecast made during a shift, as its score needs it."""

    time: str  # ISO instant of the forecast (its points' timestamp)
    produced: int  # parts the shift had made by then
    p10: float
    p50: float
    p90: float
    mean: float


@dataclass
class ShiftRecord:
    """A shift not yet scored: its window, its count at the start, the forecasts made during it."""

    name: str
    start: str
    end: str
    date: str
    target: int | None
    base: int | None = None  # the exit station's `produced` at the shift start
    forecasts: list[Made] = field(default_factory=list)

    @classmethod
    def of(cls, window: ShiftWindow) -> ShiftRecord:
        return cls(window.name, _iso(window.start), _iso(window.end), window.date.isoformat(), window.target)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.start}"

    @property
    def end_time(self) -> datetime:
        return datetime.fromisoformat(self.end.replace("Z", "+00:00"))

    @property
    def start_time(self) -> datetime:
        return datetime.fromisoformat(self.start.replace("Z", "+00:00"))


class Memory:
    """The unscored shifts, kept in a small JSON file (`fabbrica-live/1`) written atomically."""

    def __init__(self, path: Path, line: str) -> None:
        self.path = path
        self.line = line
        self.shifts: dict[str, ShiftRecord] = {}

    def load(self) -> Memory:
        if not self.path.exists():
            return self
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"format must be {STATE_FORMAT!r}, got {data.get('format')!r}")
            for entry in data["shifts"]:
                made = [Made(**item) for item in entry.pop("forecasts")]
                record = ShiftRecord(**entry, forecasts=made)
                self.shifts[record.key] = record
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LiveStateError(
                f"{self.path}: not a live twin state file ({exc}); move it away to start afresh"
            ) from None
        return self

    def save(self) -> None:
        data = {
            "format": STATE_FORMAT,
            "line": self.line,
            "shifts": [asdict(record) for record in self.shifts.values()],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, self.path)

    def record(self, window: ShiftWindow) -> ShiftRecord:
        key = ShiftRecord.of(window).key
        if key not in self.shifts:
            self.shifts[key] = ShiftRecord.of(window)
        return self.shifts[key]


# -- points --------------------------------------------------------------------------------------


def fan_instants(window: ShiftWindow, now: datetime, step: float) -> list[datetime]:
    """The fan's instants after `now`: shift start + k * step, and the shift end.

    The grid is fixed per shift, so each forecast overwrites the future points of the one before.
    """
    instants = []
    k = max(1, math.floor((now - window.start).total_seconds() / step) + 1)
    while (instant := window.start + timedelta(seconds=k * step)) < window.end:
        if instant > now:
            instants.append(instant)
        k += 1
    return [*instants, window.end]


def forecast_points(
    tag: str,
    window: ShiftWindow,
    now: datetime,
    result: dict[str, Any],
    produced: int,
    fan: Sequence[datetime],
    speed: float,
    wall_s: float,
) -> list[Point]:
    """`forecast` at `now` and `forecast_path` at each instant of `fan` (docs/live-twin.md)."""
    tags = {"line": tag, "shift": window.name}
    parts = result["parts_out"]
    fields: dict[str, Any] = {name: float(produced + parts[name]) for name in (*QUANTILES, "mean")}
    fields.update(
        produced=int(produced),
        horizon_s=float(result["horizon_s"]),
        remaining_s=float((window.end - now).total_seconds()),
        bottleneck=str(result["bottleneck"]),
        replications=int(result["replications"]),
        wall_s=float(wall_s),
    )
    if "target" in result:
        target = result["target"]
        fields["target"] = int(target["parts"])
        fields["target_probability"] = float(target["probability"])
        for name in QUANTILES:
            eta = target["eta_s"][name]
            if eta is not None:  # left out when the replications do not reach it by the shift end
                fields[f"eta_{name}"] = _ns(now + timedelta(seconds=eta / speed)) // 1_000_000
    points = [Point("forecast", dict(tags), fields, _ns(now))]
    for instant, quantiles in zip(fan, result.get("path", []), strict=True):
        path_fields = {name: float(produced + quantiles[name]) for name in QUANTILES}
        points.append(Point("forecast_path", dict(tags), path_fields, _ns(instant)))
    return points


def score_points(tag: str, record: ShiftRecord, actual: int) -> list[Point]:
    """`forecast_score` for each forecast of a shift, at the forecast's own timestamp."""
    end = record.end_time
    points = []
    for made in record.forecasts:
        at = datetime.fromisoformat(made.time.replace("Z", "+00:00"))
        error = float(actual - made.p50)
        fields: dict[str, Any] = {
            "actual": int(actual),
            "p10": made.p10,
            "p50": made.p50,
            "p90": made.p90,
            "error": error,
            "abs_error": abs(error),
            "inside": int(made.p10 <= actual <= made.p90),
            "lead_s": float((end - at).total_seconds()),
            "produced": int(made.produced),
        }
        tags = {"line": tag, "shift": record.name, "date": record.date}
        points.append(Point("forecast_score", tags, fields, _ns(at)))
    return points


# -- the forecast in a worker process ----------------------------------------------------------


def _forecast_child(connection: Any, line: Line, state: LineState, options: dict[str, Any]) -> None:
    """The forecast process's target: `twinloop.live_worker.run`, which the fork server imported."""
    from twinloop.live_worker import run

    run(connection, line, state, options)


class ForecastProcess:
    """Runs one forecast at a time in a worker process (forkserver: a fork of a clean server)."""

    def __init__(self) -> None:
        methods = multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if self.context.get_start_method() == "forkserver":
            # the server imports the main script and warms the twin once, not every forecast process
            self.context.set_forkserver_preload(["__main__", "twinloop.live", "twinloop.live_worker"])  # type: ignore[attr-defined]
        self.process: Any = None

    async def run(
        self, line: Line, state: LineState, options: dict[str, Any], limit: float
    ) -> dict[str, Any]:
        """The forecast's result; TickSkipped when it fails or still runs `limit` seconds after its start."""
        loop = asyncio.get_running_loop()
        receiver, sender = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_forecast_child, args=(sender, line, state, options))
        self.process = process
        try:
            await asyncio.to_thread(process.start)
            sender.close()
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(receiver.fileno(), lambda: ready.done() or ready.set_result(None))
            try:
                await asyncio.wait_for(ready, limit)
            except TimeoutError:
                raise TickSkipped(
                    f"the forecast was still running after {limit:g} s (deadline): abandoned"
                ) from None
            finally:
                loop.remove_reader(receiver.fileno())
            try:
                status, payload = receiver.recv()
            except EOFError:
                process.join(1)
                raise TickSkipped(f"the forecast process died (exit code {process.exitcode})") from None
            if status != "ok":
                raise TickSkipped(f"the forecast failed: {payload}")
            return payload  # type: ignore[no-any-return]
        finally:
            receiver.close()
            self.stop()

    def warm_up(self) -> None:
        """Start the fork server now (it imports the twin), not at the first forecast (blocks)."""
        if self.context.get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()

    def stop(self) -> None:
        """End the running forecast, if any, and its process group."""
        process, self.process = self.process, None
        if process is None or process.pid is None:
            return
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        process.join(5)


# -- the service ---------------------------------------------------------------------------------


@dataclass
class Tick:
    """What one tick did: `written`, `skipped`, `busy` (the previous tick still ran) or `idle` (no shift)."""

    at: datetime
    status: str
    message: str = ""
    shift: str | None = None
    scored: list[str] = field(default_factory=list)
    points: int = 0
    wall_s: float = 0.0
    forecast: dict[str, Any] | None = None
    advice: str = ""  # what the advice did in this tick (empty: nothing)


class LiveTwin:
    """The live service for one configuration. `await tick()` once, or `await run()` until stopped.

    `clock()` gives the instant of each tick (UTC; by default now, a replay passes its own).
    """

    def __init__(self, setup: LiveSetup, *, clock: Clock | None = None) -> None:
        self.setup = setup
        self.config = setup.config
        self.line = setup.line
        self.clock = clock or _clock
        self.query = setup.open_query()
        self.memory = Memory(setup.state_path, setup.line_tag).load()
        self.worker = ForecastProcess()
        self.worker.warm_up()  # the fork server warms the twin while the first tick reads
        self.ticks: list[Tick] = []
        self._running: asyncio.Task[Tick] | None = None
        self._idle_logged = False
        self.advisor: LiveAdvisor | None = None
        if self.config.advise is not None:
            from twinloop.advise import LiveAdvisor

            self.advisor = LiveAdvisor(setup, self.query, self._send, self._state_at, self._read)

    # -- reading -------------------------------------------------------------------------------
    @property
    def read_timeout(self) -> float:
        """How long a tick waits for the source (its readers time out by themselves too)."""
        return max(self.config.every, self.config.forecast_deadline, READ_TIMEOUT)

    def _state_at(self, at: datetime) -> LineState:
        from twinloop.state import reconstruct_state

        return reconstruct_state(self.query, self.line, at, speed=self.config.speed)

    async def _read(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in a thread (the readers block); TickSkipped naming `what` on failure."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(function, *args), self.read_timeout)
        except TimeoutError:
            raise TickSkipped(f"{what}: no answer within {self.read_timeout:g} s") from None
        except TickSkipped:
            raise
        except Exception as exc:
            raise TickSkipped(f"{what}: {_one_line(exc)}") from None

    def _line_is_there(self, now: datetime) -> None:
        """TickSkipped when the line sent no `machine` point in the last `stale_after`."""
        since = now - timedelta(seconds=self.config.stale_after)
        frame = self.query("machine", _ns(since), _ns(now) + 1)
        if "line" in frame.columns:
            frame = frame[frame["line"] == self.line.name]
        if frame.empty:
            raise TickSkipped(
                f"the line is away: no `machine` point of {self.line.name} since {_stamp(since)}"
            )

    def _produced(self, state: LineState) -> int:
        return state.produced(self.line)

    def _base(self, window: ShiftWindow) -> int:
        """The exit station's count at the shift start; 0 when no state can be rebuilt there (the
        line started later: its counters start from 0). A source that cannot be read skips the tick."""
        from twinloop.history import SourceError

        try:
            return self._produced(self._state_at(window.start))
        except SourceError:
            raise
        except InputError as exc:
            log.warning(
                "shift %s: no state at its start (%s): its parts are counted from 0", window.name, exc
            )
            return 0

    def _actual(self, record: ShiftRecord) -> int | None:
        """Parts the shift made; None (its forecasts dropped, a warning) when no state can be
        rebuilt at its end from the data. A source that cannot be read skips the tick."""
        from twinloop.history import SourceError

        try:
            state = self._state_at(record.end_time)
        except SourceError:
            raise
        except InputError as exc:
            log.warning(
                "shift %s of %s cannot be scored, its forecasts are dropped: %s",
                record.name,
                record.date,
                exc,
            )
            return None
        return _made_since(self._produced(state), record.base if record.base is not None else 0)

    # -- writing -------------------------------------------------------------------------------
    async def _send(self, points: list[Point]) -> None:
        """Write the points once; TickSkipped when the sink is away or refuses them all."""
        sink = open_writer(self.setup.sink)
        size = self.setup.sink.batch_size
        rejected = 0
        try:
            try:
                await sink.open()
                for start in range(0, len(points), size):
                    batch = points[start : start + size]
                    rejected += await sink.write(encode(batch), len(batch))
            finally:
                await sink.close()  # also after a failed open: it may have opened a session
        except (SinkUnavailable, OSError, TimeoutError) as exc:
            raise TickSkipped(f"sink: {_one_line(exc)}") from None
        if rejected:
            log.warning("%s: %d of %d points refused", sink.name, rejected, len(points))

    # -- one tick ------------------------------------------------------------------------------
    async def tick(self, now: datetime | None = None) -> Tick:
        """One tick at `now` (default: the clock): scores, then the forecast. Never raises."""
        at = now or self.clock()
        started = time.monotonic()
        outcome = Tick(at=at, status="written")
        try:
            outcome.scored = await self._score_ended(at)
            window = self.setup.calendar.shift_at(at)
            if window is None:
                outcome.status = "idle"
                outcome.message = f"no shift at {at.astimezone(self.setup.calendar.zone):%H:%M:%S}"
                if outcome.scored:
                    outcome.message += f"; scored {', '.join(outcome.scored)}"
                if not self._idle_logged:  # once per gap between shifts
                    log.info("%s: nothing to forecast", outcome.message)
                    self._idle_logged = True
            else:
                self._idle_logged = False
                outcome.shift = window.name
                await self._forecast(window, at, outcome)
        except TickSkipped as exc:
            outcome.status = "skipped"
            outcome.message = str(exc)
            log.warning("tick %s skipped: %s", _stamp(at), exc)
        except Exception as exc:  # a fault of this tick alone: the service goes on
            outcome.status = "skipped"
            outcome.message = f"{type(exc).__name__}: {_one_line(exc)}"
            log.error(
                "tick %s failed: %s", _stamp(at), outcome.message, exc_info=log.isEnabledFor(logging.DEBUG)
            )
        if self.advisor is not None:
            outcome.advice = await self.advisor.tick(at)
        outcome.wall_s = time.monotonic() - started
        self.ticks.append(outcome)
        return outcome

    async def _forecast(self, window: ShiftWindow, at: datetime, outcome: Tick) -> None:
        config = self.config
        await self._read("source", self._line_is_there, at)
        record = self.memory.record(window)
        if record.base is None:
            record.base = await self._read("source", self._base, window)
        state = await self._read("source", self._state_at, at)
        produced = _made_since(self._produced(state), record.base)
        state = _with_produced(state, self.line, produced)
        fan = fan_instants(window, at, config.fan_step)
        options: dict[str, Any] = {
            "horizon": (window.end - at).total_seconds() * config.speed,
            "replications": config.replications,
            "seed": config.seed,
            "engine": config.engine,
            "target": window.target,
            "workers": config.workers,
            "path": [(instant - at).total_seconds() * config.speed for instant in fan],
            "source": self.setup.source_label,
        }
        began = time.monotonic()
        result = await self.worker.run(self.line, state, options, config.forecast_deadline)
        wall_s = time.monotonic() - began
        points = forecast_points(self.setup.line_tag, window, at, result, produced, fan, config.speed, wall_s)
        await self._send(points)
        fields = points[0].fields
        record.forecasts.append(
            Made(_iso(at), produced, *(float(fields[name]) for name in (*QUANTILES, "mean")))  # type: ignore[arg-type]
        )
        self.memory.save()
        outcome.points = len(points)
        outcome.forecast = fields
        outcome.message = _summary(window, fields, self.setup.calendar.zone)
        log.info("forecast %s", outcome.message)

    async def _score_ended(self, at: datetime) -> list[str]:
        """Score every remembered shift that ended `score_delay` before `at`; their keys."""
        scored = []
        for key, record in list(self.memory.shifts.items()):
            end = record.end_time
            if end + timedelta(seconds=self.config.score_delay) > at:
                continue
            if record.forecasts:
                actual = await self._read("source", self._actual, record)
                if actual is None:
                    del self.memory.shifts[key]
                    self.memory.save()
                    continue
                await self._send(score_points(self.setup.line_tag, record, actual))
                inside = sum(made.p10 <= actual <= made.p90 for made in record.forecasts)
                log.info(
                    "shift %s of %s scored: %d parts made, %d forecasts, %d inside P10-P90",
                    record.name, record.date, actual, len(record.forecasts), inside,
                )  # fmt: skip
            del self.memory.shifts[key]
            self.memory.save()
            scored.append(key)
        return scored

    # -- the loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None, ticks: int | None = None) -> None:
        """Tick every `every` (on multiples of it, wall clock) until `stop` is set or `ticks` have started."""
        stop = stop or asyncio.Event()
        every = self.config.every
        started = 0
        try:
            while not stop.is_set() and (ticks is None or started < ticks):
                begun = time.time()
                at = self.clock()
                if self._running is not None and not self._running.done():
                    busy = Tick(at=at, status="busy", message="the previous tick is still running")
                    self.ticks.append(busy)
                    log.warning("tick %s skipped: the previous tick is still running", _stamp(at))
                else:
                    self._running = asyncio.create_task(self.tick(at))
                started += 1
                if ticks is not None and started >= ticks:
                    break
                # the next multiple of `every`, at least half an `every` after this tick's start
                after = begun + every / 2
                wait = (math.floor(after / every) + 1) * every - time.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            if self._running is not None and not stop.is_set():
                await self._running  # the last tick of a bounded run is waited for
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the running tick and its forecast process."""
        task, self._running = self._running, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.worker.stop()


def _made_since(count: int, base: int) -> int:
    """Parts made since `base` on a counter that may have restarted from 0 (then: all of `count`)."""
    return count - base if count >= base else count


def _with_produced(state: LineState, line: Line, produced: int) -> LineState:
    """`state` with the exit station's `produced` set to the parts made in the shift."""
    last = line.stations[-1].name
    station = state.stations.get(last) or StationState()
    stations = {**state.stations, last: station.model_copy(update={"produced": produced})}
    return state.model_copy(update={"stations": stations})


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _summary(window: ShiftWindow, fields: dict[str, Any], zone: Any) -> str:
    end = window.end.astimezone(zone)
    text = (
        f"{window.name} to {end:%H:%M}: {fields['produced']} made, "
        f"P10/P50/P90 {fields['p10']:.0f}/{fields['p50']:.0f}/{fields['p90']:.0f}"
    )
    if "target" in fields:
        text += f", target {fields['target']} p={fields['target_probability']:.2f}"
    return text + f", bottleneck {fields['bottleneck']} ({fields['wall_s']:.1f} s)"

"""The flow engine: a tandem line's instants from the max-plus recursions, with the SimPy engine's KPIs.

For the lines that allow it (stations in series with one machine each, blocking after
service, saturated or interarrival release, operation-based failures, set-ups and
scrap) the instants at which parts start, finish and leave each station follow from
recursions (`twin.flow_kernel`) instead of an event list. Fed the same random streams
as the SimPy engine (`twin.flow_samples`) it gives the same instants, hence the same
KPIs, computed by the same `twin.kpis`, many times sooner. A run may start from the
line's state (`twin.state`): the parts in the line enter the recursion where they are,
as `twin.flow_kernel` describes. `replicate` runs one line for many seeds (`runs` gives
the whole result of each). See docs/PERFORMANCE.md.

    >>> line = line_from_dict({"horizon": "8h", "stations": [
    ...     {"name": "press", "cycle_time": 50},
    ...     {"name": "weld", "cycle_time": {"dist": "lognormal", "mean": 45, "cv": 0.3}, "buffer": 2}]})
    >>> simulate_flow(line, seed=3).kpis["engine"]
    'flow'
    >>> [record["throughput_per_hour"] for record in replicate(line, range(3))]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from twin import flow_kernel as kernel
from twin import kpis as kpi_module
from twin.engine import RunResult
from twin.flow_samples import RunSamples, pack
from twin.line import ConwipRelease, Line, LineError
from twin.state import LineState, StartPlan, check_state, start_plan
from twin.station import STATE_NAMES

if TYPE_CHECKING:
    from twin.on_calendar import PlannedRun

PILOT_FROM = 100_000  # parts: longer runs are sized on a pilot run of PILOT_SHARE of them
PILOT_SHARE = 0.02
MAX_SAMPLES = 50_000_000  # per stream (400 MB): a line that needs more is stuck at zero durations


NETWORK_KEYS = {
    "inputs": "an assembly or a station fed out of file order",
    "release": "a feeder branch with its own release",
    "product": "a feeder branch with its own product",
    "rework": "a rework loop",
    "transport": "a transport between stations",
}


def flow_obstacle(line: Line) -> str | None:
    """Why the flow engine cannot run `line`, as 'field: reason', or None when it can."""
    if line.routes is not None:
        return "routes: product routes need the event engine (the flow engine runs chains)"
    for index, station in enumerate(line.stations):
        for key in ("inputs", "release", "product", "rework", "transport"):
            if getattr(station, key) is not None:
                what = NETWORK_KEYS[key]
                return f"stations[{index}].{key}: {what} needs the event engine (the flow engine runs chains)"
    if line.repair is not None:
        return "repair: a repair crew (machines waiting for a technician) needs the event engine"
    if isinstance(line.release, ConwipRelease):
        return "release: conwip release needs the event engine"
    for index, station in enumerate(line.stations):
        if station.capacity != 1:
            machines = station.capacity
            return f"stations[{index}].capacity: {machines} machines in one station need the event engine"
        if station.failures is not None and station.failures.basis == "calendar":
            return f"stations[{index}].failures.basis: calendar-time failures need the event engine"
        if station.maintenance is not None:
            return f"stations[{index}].maintenance: preventive maintenance needs the event engine"
        if station.switch_off is not None:
            return f"stations[{index}].switch_off: switching off when idle needs the event engine"
    return None


def check_flow(line: Line, source: str | None = None) -> None:
    """Raise a one-line LineError (prefixed with `source`, the line file) if flow cannot run `line`."""
    obstacle = flow_obstacle(line)
    if obstacle is not None:
        prefix = f"{source}: " if source else ""
        raise LineError(f"{prefix}engine: flow cannot run this line: {obstacle}")


@dataclass
class StationTrace:
    """Per part a station took before the end of the run: when it took, finished and handed it on."""

    start: np.ndarray
    done: np.ndarray
    leave: np.ndarray


@dataclass
class FlowResult(RunResult):
    """A flow run: the same record as the SimPy engine's, and optionally each station's instants.

    `active_periods` holds (n, 2) arrays of (start, end) rows rather than lists of pairs.
    """

    trace: dict[str, StationTrace] | None = field(default=None, repr=False)


def simulate_flow(
    line: Line,
    *,
    seed: int | None = None,
    horizon: float | None = None,
    warmup: float | None = None,
    trace: bool = False,
    state: LineState | None = None,
) -> FlowResult:
    """Run `line` once with the flow engine; arguments given here override the line's own.

    `state`: start from it (`twin.state`) instead of from an empty line; time 0 is its instant.
    With a shift calendar the run goes in planned time and is put back on the calendar
    (`twin.on_calendar`), as in the SimPy engine.
    """
    seed, horizon, warmup = _run_arguments(line, seed, horizon, warmup)
    check_flow(line)
    if state is not None:
        check_state(line, state)
    plan = _planned(line, horizon, warmup, state)
    if plan is not None:
        horizon, warmup = plan.horizon, plan.warmup
    started = time.perf_counter()
    samples = RunSamples(line, seed)
    start = _Start.of(line, state, seed)
    end = _end(horizon, warmup)
    if samples.parts_for(end) > PILOT_FROM:
        # a long run: see how many samples a pilot of a few percent of it takes, then draw
        # that many times more, instead of the much larger count the means allow for
        pilot = end * PILOT_SHARE
        samples.draw_for(pilot, start.parts)
        used = _Kernel(line, samples, 0.0, pilot, False, start).used
        samples.draw_like(used, scale=end / pilot, margin=1.05)
    else:
        samples.draw_for(end, start.parts)
    run = _Kernel(line, samples, warmup, end, trace, start)
    return _on_calendar(run, run.result(run.record(seed, horizon, warmup, started)), plan)


def _planned(line: Line, horizon: float, warmup: float, state: LineState | None) -> PlannedRun | None:
    """The planned-time run of a line with a shift calendar (None without one)."""
    if line.calendar is None:
        return None
    from twin.on_calendar import planned_run

    plan = planned_run(line, horizon, warmup, state.time if state is not None else None)
    if plan.horizon <= plan.warmup:
        raise ValueError("the shift calendar has no planned time between the warm-up and the horizon")
    return plan


def _on_calendar(run: _Kernel, result: FlowResult, plan: PlannedRun | None) -> FlowResult:
    """`result` put back on the calendar (as it is without one): the parts in the line at each stop
    are those entered minus those left by then, events at the instant included, as SimPy counts."""
    if plan is None:
        return result
    from twin.on_calendar import on_calendar

    entries, leaves = np.sort(run.entries), np.sort(run.leaves)
    wips = []
    for instant in plan.stop_instants:
        side: Literal["left", "right"] = "right" if instant < run.end else "left"
        instant = min(instant, run.end)
        entered = np.searchsorted(entries, instant, side=side)
        left = np.searchsorted(leaves, instant, side=side)
        wips.append(int(entered - left))
    return on_calendar(result, run.line, plan, wips)  # type: ignore[return-value]


def replicate(
    line: Line,
    seeds: Iterable[int],
    *,
    horizon: float | None = None,
    warmup: float | None = None,
    state: LineState | None = None,
) -> list[dict[str, Any]]:
    """Run `line` once per seed with the flow engine: one flat KPI record per seed.

    Each run draws ahead as much as the runs before it needed, so few run short.
    `state`: every run starts from it (`twin.state`).
    """
    return [result.kpis for result in runs(line, seeds, horizon=horizon, warmup=warmup, state=state)]


def runs(
    line: Line,
    seeds: Iterable[int],
    *,
    horizon: float | None = None,
    warmup: float | None = None,
    state: LineState | None = None,
) -> Iterator[FlowResult]:
    """`replicate`, giving each run's whole result (record, exit and lead times, active periods)."""
    check_flow(line)
    _, horizon, warmup = _run_arguments(line, None, horizon, warmup)
    if state is not None:
        check_state(line, state)
    plan = _planned(line, horizon, warmup, state)
    if plan is not None:
        horizon, warmup = plan.horizon, plan.warmup
    end = _end(horizon, warmup)
    used: np.ndarray | None = None
    samples: RunSamples | None = None
    for seed in seeds:
        started = time.perf_counter()
        if samples is None:
            samples = RunSamples(line, seed)
        else:
            samples.reseed(seed)
        start = _Start.of(line, state, seed)
        if used is None:
            samples.draw_for(end, start.parts)
        else:
            samples.draw_like(used)
        run = _Kernel(line, samples, warmup, end, False, start)
        used = run.used if used is None else np.maximum(used, run.used)
        yield _on_calendar(run, run.result(run.record(seed, horizon, warmup, started)), plan)


def _run_arguments(
    line: Line, seed: int | None, horizon: float | None, warmup: float | None
) -> tuple[int, float, float]:
    seed = line.seed if seed is None else seed
    horizon = line.horizon if horizon is None else horizon
    warmup = line.warmup if warmup is None else warmup
    if not 0 <= warmup < horizon:
        raise ValueError(f"warmup ({warmup:g}s) must be shorter than horizon ({horizon:g}s)")
    return seed, float(horizon), float(warmup)


def _end(horizon: float, warmup: float) -> float:
    """The instant the SimPy engine stops at: `run(until=horizon)` from the warm-up's end."""
    return warmup + (horizon - warmup)


@dataclass(frozen=True)
class _Start:
    """The parts in the line at the start, oldest first, as the kernel takes them (`init_*`).

    Oldest first: the part on the last station's machine, then its buffer front to back,
    then the station before. `phase` is the holding machine's state code, or
    `kernel.QUEUED` for a part in a buffer; `ttf` the failure clock per station (NaN: the
    first draw of its stream, as for an empty line and for a machine down at the start).
    """

    station: np.ndarray
    phase: np.ndarray
    product: np.ndarray
    remaining: np.ndarray
    ttf: np.ndarray

    @property
    def parts(self) -> int:
        return len(self.station)

    @classmethod
    def of(cls, line: Line, state: LineState | None, seed: int) -> _Start:
        """From `state` (checked already) and the residual times `twin.state.start_plan` draws."""
        stations = len(line.stations)
        ttf = np.full(stations, np.nan)
        if state is None:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, np.zeros(0), ttf)
        plan: StartPlan = start_plan(line, state, seed)
        products = {name: index for index, name in enumerate(line.product_mix)}
        station, phase, product, remaining = [], [], [], []
        for j in reversed(range(stations)):
            (machine,) = plan.machines[j]
            if machine.ttf_left is not None and machine.state != kernel.DOWN:
                ttf[j] = machine.ttf_left
            if machine.product is not None:
                station.append(j)
                phase.append(machine.state)
                product.append(products[machine.product])
                remaining.append(machine.remaining)
            for name in plan.buffers[j]:
                station.append(j)
                phase.append(kernel.QUEUED)
                product.append(products[name])
                remaining.append(0.0)
        return cls(
            np.array(station, dtype=np.int64),
            np.array(phase, dtype=np.int64),
            np.array(product, dtype=np.int64),
            np.array(remaining, dtype=float),
            ttf,
        )


class _Kernel:
    """One run of the compiled recursion, drawing more samples until no stream runs short."""

    def __init__(
        self,
        line: Line,
        samples: RunSamples,
        warmup: float,
        end: float,
        trace: bool,
        start: _Start | None = None,
    ) -> None:
        if start is None:
            start = _Start.of(line, None, 0)
        self.line = line
        self.end = end
        self.warmup = warmup
        stations = len(line.stations)
        products = len(line.product_mix)
        self.buffers = np.array([-1 if s.buffer is None else s.buffer for s in line.stations], dtype=np.int64)
        self.saturated = line.release == "saturated"
        if self.saturated:
            self.buffers[0] = -1
        self.has_setup = np.array([s.setup is not None for s in line.stations])
        self.has_failures = np.array([s.failures is not None for s in line.stations])
        self.scrap_probability = np.array([s.scrap for s in line.stations], dtype=float)
        self.time_in = np.zeros((stations, 5))
        self.counts = np.zeros((stations, 4), dtype=np.int64)
        self.n_changes = np.zeros(stations, dtype=np.int64)
        self.n_trace = np.zeros(stations, dtype=np.int64)
        self.totals = np.zeros(5, dtype=np.int64)
        self.used = np.zeros((7, stations, products), dtype=np.int64)
        need = np.zeros(3, dtype=np.int64)
        while True:
            args = self._arguments(samples, trace, start.parts)
            status = kernel.run_line(
                self.saturated,
                self.buffers,
                self.has_setup,
                self.has_failures,
                self.scrap_probability,
                *args["samples"],
                start.station,
                start.phase,
                start.product,
                start.remaining,
                start.ttf,
                warmup,
                end,
                self.time_in,
                self.counts,
                args["changes"],
                self.n_changes,
                args["entries"],
                args["leaves"],
                args["exits"],
                args["leads"],
                self.totals,
                args["trace"],
                self.n_trace,
                self.used,
                need,
            )
            if status == kernel.OK:
                break
            draws = samples.stream_of(int(need[0]), int(need[1]), int(need[2]))
            more = max(2 * draws.count, draws.count + 1024)
            entered = self.totals[kernel.ENTRIES]
            reached = args["entries"][entered - 1] if entered else 0.0  # how far the run got
            stuck = draws.count >= 1_000_000 and draws.count * end >= MAX_SAMPLES * reached
            if more > MAX_SAMPLES or stuck:
                raise LineError(
                    f"{line.name}: the run would need over {MAX_SAMPLES:,} samples of one stream "
                    "(durations of zero?)"
                )
            draws.ensure(more)
        totals = self.totals
        self.changes = args["changes"]
        self.entries = args["entries"][: totals[kernel.ENTRIES]]
        self.leaves = args["leaves"][: totals[kernel.LEAVES]]
        self.exits = args["exits"][: totals[kernel.EXITS]]
        self.leads = args["leads"][: totals[kernel.EXITS]]
        self.trace = args["trace"]
        self.wip_area = float(kernel.wip_area(self.entries, self.leaves, warmup, end))

    def _arguments(self, samples: RunSamples, trace: bool, initial: int) -> dict[str, Any]:
        stations = len(samples.cycle)
        products = len(samples.cycle[0])
        flat = [draws for per_product in samples.cycle for draws in per_product]
        cycle, cycle_start, cycle_count = pack(flat)
        cycle_start = cycle_start.reshape(stations, products)
        cycle_count = cycle_count.reshape(stations, products)
        packed: list[Any] = [
            samples.products.values.astype(np.int64),
            samples.arrivals.values if samples.arrivals is not None else np.zeros(0),
            cycle,
            cycle_start,
            cycle_count,
        ]
        for streams in (samples.setup, samples.scrap, samples.ttf, samples.ttr):
            packed.extend(pack(streams))
        parts = len(packed[0])
        if samples.arrivals is not None:
            parts = min(parts, len(packed[1]))
        parts += initial  # the parts in the line at the start come first
        # a station takes one part per cycle time drawn, and one held at the start without a draw
        per_station = cycle_count.sum(axis=1) + 1
        return {
            "samples": packed,
            "changes": np.zeros((stations, 2 * int(per_station.max()) + 8)),
            "entries": np.zeros(parts),
            "leaves": np.zeros(parts),
            "exits": np.zeros(parts),
            "leads": np.zeros(parts),
            "trace": np.zeros((stations, int(per_station.max()) if trace else 0, 3)),
        }

    def record(self, seed: int, horizon: float, warmup: float, started: float) -> dict[str, Any]:
        """The run's flat KPI record, made by `twin.kpis` exactly as for the SimPy engine."""
        line = self.line
        self.machines = [
            [
                _MachineAccount(
                    self.time_in[j], self.counts[j], self.changes[j, : self.n_changes[j]].reshape(-1, 2)
                )
            ]
            for j in range(len(line.stations))
        ]
        accounts = _LineAccounts(
            line=line,
            machines=self.machines,
            exits=int(self.totals[kernel.EXITS]),
            scrapped=int(self.totals[kernel.SCRAPS]),
            wip_area=self.wip_area,
            lead_times=self.leads,
        )
        record = kpi_module.line_kpis(accounts, horizon=horizon, warmup=warmup)
        record.update(
            horizon_s=float(horizon),
            warmup_s=float(warmup),
            seed=seed,
            engine="flow",
            engine_fallback=None,
            events=int(self.totals[kernel.OPERATIONS]),
        )
        record["wall_s"] = time.perf_counter() - started
        return record

    def result(self, record: dict[str, Any]) -> FlowResult:
        """The whole run: `record`, lead and exit times, active periods and the trace if asked for."""
        line = self.line
        trace = None
        if self.trace.shape[1]:
            trace = {
                station.name: StationTrace(*(self.trace[j, : self.n_trace[j], c].copy() for c in range(3)))
                for j, station in enumerate(line.stations)
            }
        return FlowResult(
            kpis=record,
            lead_times=self.leads.tolist(),
            exit_times=self.exits.tolist(),
            active_periods={
                station.name: [machine.periods for machine in machines]
                for station, machines in zip(line.stations, self.machines, strict=True)
            },
            trace=trace,
        )


class _MachineAccount:
    """A machine's `twin.kpis.MachineAccounts`, from the kernel's accounts."""

    def __init__(self, time_in: np.ndarray, counts: np.ndarray, periods: np.ndarray) -> None:
        # working, blocked, starved, down, setup; the later states never happen here
        self.time_in = [*time_in.tolist(), *[0.0] * (len(STATE_NAMES) - len(time_in))]
        self.processed = int(counts[kernel.PROCESSED])
        self.parts_out = int(counts[kernel.PARTS_OUT])
        self.scrapped = int(counts[kernel.SCRAPPED])
        self.failures = int(counts[kernel.FAILURES])
        self.services = 0  # no preventive maintenance on the flow engine
        self.periods = periods

    def active_periods(self, start: float) -> np.ndarray:
        return self.periods


@dataclass
class _LineAccounts:
    """The run's `twin.kpis.LineAccounts`, from the kernel's accounts."""

    line: Line
    machines: list[list[_MachineAccount]]
    exits: int
    scrapped: int
    wip_area: float
    lead_times: np.ndarray

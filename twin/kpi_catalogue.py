"""The KPIs a run of the twin reports, declared once: name, level, type, unit and meaning.

`KPIS` lists them in the order of the run's record (`fabbrica twin run --json`): the line's
KPIs, each station's, and the fields that describe the run itself. Everything that names a
KPI asks this tuple instead of keeping its own list: the tests check the record of a real run
of each engine against it, the CLI prints its tables from it, the results sink types its
fields by it, experiment files may ask for its numeric line and station KPIs, docs/kpis.md is
generated from it (`python -m twin.kpi_docs`) and the dashboards take their units from it.
Adding a KPI means declaring it here and computing it in `twin.kpis`.

Standard library only, so that experiment files and the results sink can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["line", "station", "run"]
LEVELS: tuple[Level, ...] = ("line", "station", "run")


@dataclass(frozen=True)
class Kpi:
    """One value of a run's record.

    `level`: "line" (one per run), "station" (one per station, under `stations`) or "run"
    (describes the run rather than measuring the line: horizon, seed, engine ...).
    `unit`: "parts/h", "parts", "s", "share" (a dimensionless fraction) or "" (none).
    `label`: a short heading for tables. `optional`: the value is None when undefined (a
    lead time when no part left). `same_as`: another KPI of the same level with the same value.
    """

    name: str
    level: Level
    type: type[float] | type[int] | type[str]
    unit: str
    label: str
    description: str
    optional: bool = False
    same_as: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"{self.name}: level must be line, station or run, got {self.level!r}")
        if self.type not in (float, int, str):
            raise ValueError(f"{self.name}: type must be float, int or str, got {self.type!r}")


KPIS: tuple[Kpi, ...] = (
    Kpi(
        "throughput_per_hour",
        "line",
        float,
        "parts/h",
        "throughput",
        "good parts leaving the last station in T, per hour",
    ),
    Kpi("parts_out", "line", int, "parts", "parts out", "good parts out of the line in T"),
    Kpi("scrapped", "line", int, "parts", "scrapped", "parts scrapped at any station in T"),
    Kpi(
        "wip_mean",
        "line",
        float,
        "parts",
        "WIP mean",
        "time average of the parts in the line (released, not yet out or scrapped)",
    ),
    Kpi(
        "lead_time_mean_s",
        "line",
        float,
        "s",
        "lead time mean",
        "mean lead time (release to exit) of the good parts that left in T (`null` if none)",
        optional=True,
    ),
    Kpi(
        "lead_time_p95_s",
        "line",
        float,
        "s",
        "lead time p95",
        "95th percentile of the lead times of the good parts that left in T (`null` if none)",
        optional=True,
    ),
    Kpi(
        "bottleneck",
        "line",
        str,
        "",
        "bottleneck",
        "the station with the largest sole + shifting bottleneck share (below)",
    ),
    Kpi(
        "energy_kwh",
        "line",
        float,
        "kWh",
        "energy",
        "energy used by all stations in T (the sum of the stations' `energy_kwh`)",
    ),
    Kpi(
        "energy_per_good_part_kwh",
        "line",
        float,
        "kWh/part",
        "energy per part",
        "`energy_kwh` ÷ good parts out of the line in T (`null` if none)",
        optional=True,
    ),
    Kpi(
        "planned_share",
        "line",
        float,
        "share",
        "planned",
        "share of T inside the shift calendar's planned production time (1 without `calendar:`)",
    ),
    Kpi(
        "throughput_per_planned_hour",
        "line",
        float,
        "parts/h",
        "throughput / planned h",
        "good parts leaving the last station in T per hour of planned production time "
        "(= `throughput_per_hour` without `calendar:`)",
    ),
    Kpi(
        "energy_per_planned_hour_kwh",
        "line",
        float,
        "kWh/h",
        "energy / planned h",
        "`energy_kwh` ÷ hours of planned production time in T (planned stops' energy included)",
    ),
    Kpi("working", "station", float, "share", "working", "processing a part"),
    Kpi("blocked", "station", float, "share", "blocked", "holding a finished part, no room downstream"),
    Kpi("starved", "station", float, "share", "starved", "empty, waiting for a part"),
    Kpi(
        "off",
        "station",
        float,
        "share",
        "off",
        "switched off after idling for `switch_off.after` (a starved time; 0 without `switch_off:`)",
    ),
    Kpi(
        "down",
        "station",
        float,
        "share",
        "down",
        "broken and under repair (and stopped by an operator, on the simulated line)",
    ),
    Kpi(
        "waiting_repair",
        "station",
        float,
        "share",
        "waiting repair",
        "broken, waiting for a technician of the line's repair crew (0 without `repair:`)",
    ),
    Kpi(
        "setup",
        "station",
        float,
        "share",
        "setup",
        "changing over to another product, or restarting after a switch-off",
    ),
    Kpi(
        "maintenance",
        "station",
        float,
        "share",
        "maintenance",
        "preventive maintenance (`maintenance:`): ISO 22400 planned downtime, outside planned busy time",
    ),
    Kpi(
        "planned_stop",
        "station",
        float,
        "share",
        "planned stop",
        "outside the shift calendar's planned production time: no shift, a break, a holiday",
    ),
    Kpi("utilization", "station", float, "share", "utilization", "the working share", same_as="working"),
    Kpi(
        "oee",
        "station",
        float,
        "share",
        "oee",
        "availability × performance × quality (= ideal cycle time × good parts ÷ machine time)",
    ),
    Kpi(
        "availability",
        "station",
        float,
        "share",
        "availability",
        "1 − (down + waiting repair + setup) ÷ planned busy time, where planned busy time = 1 − "
        "planned stop − maintenance (ISO 22400-2): breakdowns, the wait for a technician and "
        "change-overs are availability losses; planned stops and preventive maintenance are not",
    ),
    Kpi(
        "performance",
        "station",
        float,
        "share",
        "performance",
        "ideal cycle time × parts processed ÷ available machine time; blocked, starved and off time are "
        "**performance** losses, not availability losses (Nakajima's speed losses include the small "
        "stops caused by neighbouring machines)",
    ),
    Kpi("quality", "station", float, "share", "quality", "good parts ÷ parts processed at this station"),
    Kpi("parts_out", "station", int, "parts", "parts out", "good parts that left the station in T"),
    Kpi("scrapped", "station", int, "parts", "scrapped", "parts scrapped at this station in T"),
    Kpi("failures", "station", int, "", "failures", "breakdowns of the station's machines begun in T"),
    Kpi(
        "services",
        "station",
        int,
        "",
        "services",
        "preventive maintenance services of the station's machines begun in T (`maintenance:`)",
    ),
    Kpi(
        "energy_kwh",
        "station",
        float,
        "kWh",
        "energy",
        "Σ over states of the station's power in the state (`power:`, kW) × machine time in it, in T "
        "(idle = starved and blocked; down = down, waiting for repair, maintenance and stopped; off = "
        "switched off and planned stops; 0 without `power:`)",
    ),
    Kpi(
        "energy_per_good_part_kwh",
        "station",
        float,
        "kWh/part",
        "energy per part",
        "the station's `energy_kwh` ÷ its good parts out in T (`null` if none)",
        optional=True,
    ),
    Kpi(
        "bottleneck_sole",
        "station",
        float,
        "share",
        "sole bottleneck",
        "share of T in which a machine of this station was the sole bottleneck",
    ),
    Kpi(
        "bottleneck_shifting",
        "station",
        float,
        "share",
        "shifting bottleneck",
        "share of T in which a machine of this station was a shifting bottleneck (an overlap of two "
        "active periods is shifting time for both, so the shares of all stations may add up to more "
        "than 1)",
    ),
    Kpi("horizon_s", "run", float, "s", "horizon", "simulated time, warm-up included"),
    Kpi("warmup_s", "run", float, "s", "warm-up", "simulated time before the statistics restart"),
    Kpi("seed", "run", int, "", "seed", "the run's seed: every random stream derives from it"),
    Kpi("engine", "run", str, "", "engine", "the engine that ran the line: `simpy`, `event` or `flow`"),
    Kpi(
        "engine_fallback",
        "run",
        str,
        "",
        "why not flow",
        "with `engine: auto`, why a faster engine did not run the line, in one line: the field that "
        "rules out the flow engine when the event engine ran, the observer or the setpoints (or a "
        "field that rules out the event engine) when SimPy ran; `null` when flow ran or the engine "
        "was chosen by hand",
        optional=True,
    ),
    Kpi(
        "events",
        "run",
        int,
        "",
        "events",
        "events the engine handled: SimPy events scheduled, the event engine's events processed, or "
        "the flow engine's operations",
    ),
    Kpi("wall_s", "run", float, "s", "wall time", "wall-clock time of the run"),
)


def kpis_at(level: Level) -> tuple[Kpi, ...]:
    """The declared KPIs of one level, in the record's order."""
    return tuple(kpi for kpi in KPIS if kpi.level == level)


def kpi(name: str, level: Level = "line") -> Kpi:
    """The declared KPI `name` of `level`; KeyError naming the known ones if there is none."""
    for declared in kpis_at(level):
        if declared.name == name:
            return declared
    known = ", ".join(declared.name for declared in kpis_at(level))
    raise KeyError(f"no {level} KPI {name!r} (known: {known})")


def names(level: Level, *types: type) -> tuple[str, ...]:
    """The names of the declared KPIs of `level`, only those of `types` when given."""
    return tuple(kpi.name for kpi in kpis_at(level) if not types or kpi.type in types)


def _unique() -> None:
    for level in LEVELS:
        seen = names(level)
        if len(set(seen)) != len(seen):
            raise ValueError(f"KPI names repeat at level {level}: {seen}")
    for declared in KPIS:
        if declared.same_as is not None:
            kpi(declared.same_as, declared.level)


_unique()

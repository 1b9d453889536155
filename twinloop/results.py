"""The twin's results as InfluxDB points, written through the connectors' sinks.

The twin gives flat records (a run's KPIs, a validation, an experiment's summary); this
module maps them one to one onto points, so that Grafana reads them next to what the line
recorded. The schema is documented in docs/influx-schema.md:

- `twin_kpi` (tags line, run_id, source) and `twin_station` (tags line, run_id, source,
  station): one `fabbrica twin run`;
- `validation_run` (tags line, run_id) and `validation` (tags line, run_id, quantity and,
  for station quantities, station): one `fabbrica twin validate`;
- `experiment_run` (tag experiment), `experiment_kpi` (tags experiment, scenario, kpi) and
  `experiment_bottleneck` (tags experiment, scenario, station): one `fabbrica experiment run`.

Every point of one record carries the same timestamp (when the record was made), so
`last()` over a time range in InfluxQL gives the latest record of each series.

    points = twin_run_points(result.kpis, line="demonstrator", run_id="20261125T080000Z-s1")
    write_points(sink_config, points)      # the settings of any sink in connectors.sinks.registry

The commands take the same sink options as the connectors (`sink_options`): a connector
config's `sink:` section (`--sink-config`), or `--influx-url` with `--influx-database`
(InfluxDB 1.x) or `--influx-org`/`--influx-bucket` (2.x/3.x), the token from INFLUX_TOKEN.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from connectors.common.points import Point, encode
from connectors.common.secrets import hide_in_logs
from connectors.sinks.base import Sink
from connectors.sinks.config import InfluxDB1Sink, InfluxDB2Sink, SinkSettings
from connectors.sinks.registry import SINK_TYPES, open_writer, read_sink
from foundation.errors import InputError, format_error
from twin.kpi_catalogue import kpi, kpis_at, names
from twin.station import REPORTED_STATES

if TYPE_CHECKING:
    from twin.experiments import ExperimentResult

AnySink = SinkSettings  # the settings of any sink in connectors.sinks.registry

# fields and their types: InfluxDB refuses a field whose type changes, so each has the type
# declared in twin.kpi_catalogue; a twin_kpi point holds every line KPI and these run fields
RUN_FIELDS = tuple(kpi(name, "run") for name in ("horizon_s", "warmup_s", "seed"))
_LINE_FIELDS = (*kpis_at("line"), *RUN_FIELDS)
LINE_FLOATS = tuple(field.name for field in _LINE_FIELDS if field.type is float)
LINE_INTS = tuple(field.name for field in _LINE_FIELDS if field.type is int)
LINE_STRINGS = tuple(field.name for field in _LINE_FIELDS if field.type is str)
STATION_FLOATS = names("station", float)
STATION_INTS = names("station", int)
# the `validation` quantity of a station's good parts out per hour (the line's is `throughput_per_hour`)
STATION_THROUGHPUT = "station_throughput_per_hour"
# the `validation` quantities of energy per good part (kWh): the line's, and a station's
LINE_ENERGY = kpi("energy_per_good_part_kwh").name
STATION_ENERGY = "station_" + kpi("energy_per_good_part_kwh", "station").name


def now_ns() -> int:
    return time.time_ns()


def new_run_id(seed: int | None = None, at: datetime | None = None) -> str:
    """A readable run id: UTC time of the run, and its seed when there is one."""
    stamp = (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return stamp if seed is None else f"{stamp}-s{seed}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fields(record: Mapping[str, Any], floats: Iterable[str], ints: Iterable[str]) -> dict[str, Any]:
    """The record's numbers as typed fields; missing, None and non-finite values are left out."""
    fields: dict[str, Any] = {}
    for name in floats:
        value = _finite(record.get(name))
        if value is not None:
            fields[name] = value
    for name in ints:
        value = record.get(name)
        if value is not None:
            fields[name] = int(value)
    return fields


# -- fabbrica twin run ---------------------------------------------------------------------------


def twin_run_points(
    kpis: Mapping[str, Any],
    *,
    line: str,
    run_id: str,
    time_ns: int | None = None,
    source: str = "twin_run",
) -> list[Point]:
    """`twin_kpi` and one `twin_station` per station from a run's KPI record."""
    stamp = now_ns() if time_ns is None else time_ns
    tags = {"line": line, "run_id": run_id, "source": source}
    fields = _fields(kpis, LINE_FLOATS, LINE_INTS)
    for name in LINE_STRINGS:
        if kpis.get(name):
            fields[name] = str(kpis[name])
    points = [Point("twin_kpi", dict(tags), fields, stamp)]
    for station, values in kpis.get("stations", {}).items():
        station_fields = _fields(values, STATION_FLOATS, STATION_INTS)
        sole, shifting = values.get("bottleneck_sole"), values.get("bottleneck_shifting")
        if sole is not None and shifting is not None:
            station_fields["bottleneck"] = float(sole) + float(shifting)
        points.append(Point("twin_station", {**tags, "station": station}, station_fields, stamp))
    return points


# -- fabbrica twin validate ----------------------------------------------------------------------


def validation_points(
    record: Mapping[str, Any], *, line: str, run_id: str, time_ns: int | None = None
) -> list[Point]:
    """`validation_run` (the verdict) and one `validation` point per compared quantity.

    A quantity the validation checked (`record["checks"]`) gets `within` from that check: inside
    the tolerance or the twin's 95 % prediction interval, as the verdict counts it.
    """
    stamp = now_ns() if time_ns is None else time_ns
    tags = {"line": line, "run_id": run_id}
    tolerance = float(record["tolerance"])
    checks: Mapping[str, Any] = record.get("checks") or {}
    throughput = record["throughput"]
    summary: dict[str, Any] = {
        "verdict": str(record["verdict"]),
        "valid": int(record["verdict"] == "valid"),
        "tolerance": tolerance,
        "replications": int(record["replications"]),
        "window_s": float(record["window_s"]),
    }
    points = [Point("validation_run", dict(tags), summary, stamp)]
    fields = _compared(throughput, "observed", "twin_mean", tolerance, checks.get("throughput"))
    points.append(Point("validation", {**tags, "quantity": "throughput_per_hour"}, fields, stamp))
    if "energy" in record:  # the line's energy per good part, when every powered station was metered
        fields = _energy_fields(record["energy"], tolerance, checks.get("energy_per_good_part"))
        points.append(Point("validation", {**tags, "quantity": LINE_ENERGY}, fields, stamp))
    for station, entry in record["stations"].items():
        rate = entry.get("throughput")
        if rate is not None:  # parts out of the station per hour
            fields = _compared(rate, "observed", "twin_mean", tolerance, checks.get(f"{station}.throughput"))
            point_tags = {**tags, "quantity": STATION_THROUGHPUT, "station": station}
            points.append(Point("validation", point_tags, fields, stamp))
        energy = entry.get("energy")
        if energy is not None:  # the station's metered kWh per good part
            check = checks.get(f"{station}.energy_per_good_part")
            point_tags = {**tags, "quantity": STATION_ENERGY, "station": station}
            points.append(Point("validation", point_tags, _energy_fields(energy, tolerance, check), stamp))
        observed = entry.get("observed") or {}
        for state in REPORTED_STATES:  # a share's relative error where the validation checked it
            check = checks.get(f"{station}.{state}")
            shares = {
                "observed": observed.get(state),
                "twin": entry["twin"].get(state),
                "rel_error": None if check is None else check["rel_error"],
            }
            fields = _compared(shares, "observed", "twin", tolerance, check)
            point_tags = {**tags, "quantity": state, "station": station}
            points.append(Point("validation", point_tags, fields, stamp))
    return points


def _compared(
    values: Mapping[str, Any], observed: str, twin: str, tolerance: float, check: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A compared quantity's fields: `observed`, `twin`, `twin_ci95` and `rel_error` as the record
    has them, `tolerance`, and `within` where the quantity is judged. A value the line did not
    record is left out, never invented."""
    fields = {
        "observed": _finite(values.get(observed)),
        "twin": _finite(values.get(twin)),
        "twin_ci95": _finite(values.get("twin_ci95")),
        "rel_error": _finite(values.get("rel_error")),
        "tolerance": tolerance,
    }
    out: dict[str, Any] = {key: value for key, value in fields.items() if value is not None}
    if check is not None:
        out["within"] = int(bool(check["ok"]))
    elif "rel_error" in out:
        out["within"] = int(out["rel_error"] <= tolerance)
    return out


def _energy_fields(
    energy: Mapping[str, Any], tolerance: float, check: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Energy per good part (kWh) observed against the twin, with what the line's figure came from:
    the metered kWh, the good parts and the basis (`energy`: the meter, `Power`: the power samples,
    `stations`: the line's sum of its stations)."""
    fields = _compared(energy, "observed_per_good_part_kwh", "twin_per_good_part_kwh", tolerance, check)
    kwh = _finite(energy.get("observed_kwh"))
    if kwh is not None:
        fields["observed_kwh"] = kwh
    if energy.get("good_parts") is not None:
        fields["good_parts"] = int(energy["good_parts"])
    if energy.get("basis"):
        fields["basis"] = str(energy["basis"])
    return fields


# -- fabbrica experiment run ---------------------------------------------------------------------


def experiment_points(result: ExperimentResult, *, time_ns: int | None = None) -> list[Point]:
    """`experiment_run`, `experiment_kpi` per scenario and KPI, `experiment_bottleneck` per station."""
    meta = result.metadata
    stamp = time_ns if time_ns is not None else _finished_ns(meta)
    experiment = result.name
    scenarios = meta["design"]["scenarios"]
    text = (
        f"experiment {experiment}: {len(scenarios)} scenarios, {meta['runs']} runs"
        f" in {float(meta['wall_s']):.1f} s" + (" (interrupted)" if meta.get("interrupted") else "")
    )
    run_fields: dict[str, Any] = {
        "text": text,
        "scenarios": len(scenarios),
        "runs": int(meta["runs"]),
        "wall_s": float(meta["wall_s"]),
        "interrupted": bool(meta.get("interrupted")),
        "line": str(meta.get("line", "")),
    }
    if meta.get("git_commit"):
        run_fields["git_commit"] = str(meta["git_commit"])
    points = [Point("experiment_run", {"experiment": experiment}, run_fields, stamp)]
    for row in result.summary.itertuples(index=False):
        mean, ci95 = _finite(row.mean), _finite(row.ci95)
        fields: dict[str, Any] = {"replications": int(row.replications)}
        for name, value in (("mean", mean), ("std", _finite(row.std)), ("ci95", ci95)):
            if value is not None:
                fields[name] = value
        if mean is not None and ci95 is not None:
            fields["lower"], fields["upper"] = mean - ci95, mean + ci95
        tags = {"experiment": experiment, "scenario": str(row.scenario), "kpi": str(row.kpi)}
        points.append(Point("experiment_kpi", tags, fields, stamp))
    points.extend(_bottleneck_points(result, stamp))
    return points


def _bottleneck_points(result: ExperimentResult, stamp: int) -> list[Point]:
    runs = result.runs
    if runs.empty:
        return []
    stations = sorted(
        {column.split(".")[1] for column in runs.columns if column.endswith(".bottleneck_sole")}
    )
    points = []
    for scenario, rows in runs.groupby("scenario", sort=False):
        for station in stations:
            sole = _finite(rows[f"stations.{station}.bottleneck_sole"].mean())
            shifting = _finite(rows[f"stations.{station}.bottleneck_shifting"].mean())
            if sole is None or shifting is None:
                continue
            fields = {"sole": sole, "shifting": shifting, "total": sole + shifting, "replications": len(rows)}
            tags = {"experiment": result.name, "scenario": str(scenario), "station": station}
            points.append(Point("experiment_bottleneck", tags, fields, stamp))
    return points


def _finished_ns(meta: Mapping[str, Any]) -> int:
    finished = meta.get("finished_at")
    if not finished:
        return now_ns()
    moment = datetime.fromisoformat(str(finished))
    return int(moment.timestamp()) * 10**9


# -- writing -------------------------------------------------------------------------------------


async def _write(sink: Sink, points: list[Point], batch_size: int) -> int:
    try:
        await sink.open()  # inside: a sink that fails half-way through opening is closed too
        rejected = 0
        for start in range(0, len(points), batch_size):
            batch = points[start : start + batch_size]
            rejected += await sink.write(encode(batch), len(batch))
        return rejected
    finally:
        await sink.close()


def write_points(sink_config: AnySink, points: list[Point], base: Path | None = None) -> int:
    """Write the points once (no spool: a result is made again by running the command again).

    Returns how many points the sink refused; raises SinkUnavailable if it cannot be reached.
    """
    sink = open_writer(sink_config, base or Path.cwd())
    return asyncio.run(_write(sink, points, sink_config.batch_size))


# -- the command-line options --------------------------------------------------------------------


def sink_from_file(
    path: Path, environ: Mapping[str, str] | None = None, option: str = "--sink-config"
) -> tuple[AnySink, Path]:
    """The `sink:` section of a file (a whole connector config, or one holding only `sink:`),
    with `${ENV}` substitution and relative paths made absolute (`connectors.sinks.registry.read_sink`),
    and the file's folder; InputError (one line) on any problem.

    The secrets stay secrets: the model keeps them as SecretStr, and their values are hidden
    in every log from here on.
    """
    from connectors.config import ConfigError

    try:
        loaded = read_sink(path, environ)
    except ConfigError as exc:
        if exc.error is not None:
            first: dict[str, Any] = dict(exc.error.errors(include_url=False)[0])
            first["loc"] = tuple(part for part in first["loc"] if part not in SINK_TYPES)
            field, message = format_error(first)
            raise InputError(f"{path}: {field}: {message}") from None
        raise InputError(str(exc) if exc.path else f"{option}: {exc}") from None
    hide_in_logs(loaded.secrets)
    return loaded.config, loaded.base


def sink_options(
    sink_config: Path | None,
    influx_url: str | None,
    influx_database: str | None,
    influx_token: str | None,
    influx_org: str | None,
    influx_bucket: str | None,
) -> tuple[AnySink, Path] | None:
    """The sink the command-line options name, or None when they name none."""
    influx = {
        "--influx-url": influx_url,
        "--influx-database": influx_database,
        "--influx-org": influx_org,
        "--influx-bucket": influx_bucket,
    }
    given = [name for name, value in influx.items() if value]
    if sink_config is not None:
        if given:
            raise InputError(f"--sink-config: give it or {', '.join(given)}, not both")
        return sink_from_file(sink_config)
    if not given:
        return None
    if not influx_url:
        raise InputError(f"{given[0]}: needs --influx-url")
    if influx_bucket and influx_database:
        raise InputError("--influx-database (InfluxDB 1.x) and --influx-bucket (2.x/3.x): give one")
    if influx_token:
        hide_in_logs([influx_token])
    try:
        if influx_bucket:
            return (
                InfluxDB2Sink(
                    type="influxdb2",
                    url=influx_url,  # type: ignore[arg-type]
                    token=influx_token or "",  # type: ignore[arg-type]
                    org=influx_org or "",
                    bucket=influx_bucket,
                ),
                Path.cwd(),
            )
        if not influx_database:
            raise InputError("--influx-url: give --influx-database (1.x) or --influx-bucket (2.x/3.x)")
        return InfluxDB1Sink(type="influxdb1", url=influx_url, database=influx_database), Path.cwd()  # type: ignore[arg-type]
    except ValidationError as exc:
        first: dict[str, Any] = dict(exc.errors(include_url=False)[0])
        field, message = format_error(first)
        raise InputError(f"--influx-{field.replace('_', '-')}: {message}") from None


def write_results(target: tuple[AnySink, Path] | None, points: list[Point], what: str) -> str | None:
    """Write `points` to the chosen sink; a line for stderr saying what happened (None: no sink)."""
    if target is None:
        return None
    from connectors.sinks.base import SinkUnavailable

    config, base = target
    sink = open_writer(config, base)
    try:
        rejected = asyncio.run(_write(sink, points, config.batch_size))
    except SinkUnavailable as exc:
        raise InputError(f"cannot write {what}: {exc}") from None
    written = len(points) - rejected
    return f"{what}: {written} points written to {sink.name}" + (f" ({rejected} refused)" if rejected else "")

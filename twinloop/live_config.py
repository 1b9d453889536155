"""The live twin's configuration and its shift calendar: one YAML file, validated before anything runs.

`twinloop/live-sample.yaml` is the reference for the format: every key, its default and its
meaning (docs/live-twin.md shows it, copied by `python -m twinloop.live_config --docs`).
`read_live_config` reads a file into a `LiveSetup`: the validated `LiveConfig`, the line, where
the history is read (`query`, as `twinloop.history.open_source` gives it) and where the
forecasts go (a sink of `connectors.sinks.registry`). A bad file is one `LiveConfigError`
naming the file and the field.

Shifts are times of day in the configured time zone, on the wall clock. A shift whose end is
not after its start runs over midnight. `Calendar.shift_at(instant)` says which shift an
instant belongs to (start included, end excluded), as a `ShiftWindow` with both ends as
UTC instants; daylight-saving changes follow from the zone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from connectors.common.secrets import EnvError, hide_in_logs, substitute
from connectors.sinks.config import EmbeddedSink, InfluxDB1Sink, SinkConfig, SinkSettings
from connectors.sinks.registry import SINK_TYPES
from foundation.durations import Duration
from foundation.errors import FieldError, InputError, format_error, validation_message
from foundation.models import Strict
from foundation.yamlfile import read_mapping
from twin.advice import Objective
from twin.line import Line, load_line
from twin.setpoints import Limits
from twinloop.advise_config import LiveAdvice, check_against_line, limits_of, substituted
from twinloop.history import ReadsHistory

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "live-sample.yaml"


class LiveConfigError(InputError):
    """The live twin's configuration is invalid: one line naming the file and the field."""


def _time_of_day(value: Any) -> time:
    """`"06:00"` or `"06:00:30"`; a bare 14:00 is a number in YAML 1.1 and asks for quotes."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'write times of day in quotes, e.g. "14:00" (YAML read {value!r} as a number)')
    if not isinstance(value, str):
        raise ValueError(f'must be a time of day such as "06:00", got {value!r}')
    try:
        parsed = time.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f'must be a time of day such as "06:00" or "21:30:00", got {value!r}') from None
    if parsed.tzinfo is not None:
        raise ValueError(f"no offset in a time of day (the zone is `timezone`), got {value!r}")
    return parsed


class Shift(Strict):
    """One shift of every day: its name (the `shift` tag), start, end and target parts (optional)."""

    name: str = Field(min_length=1)
    start: time
    end: time
    target: int | None = Field(default=None, ge=0)

    _times = field_validator("start", "end", mode="before")(_time_of_day)

    @model_validator(mode="after")
    def _not_empty(self) -> Shift:
        if self.start == self.end:
            raise FieldError("end", f"equals start ({self.start}): a shift lasts less than a day")
        return self

    def seconds(self) -> list[tuple[int, int]]:
        """The shift as [start, end) second-of-day intervals, split at midnight."""
        a = self.start.hour * 3600 + self.start.minute * 60 + self.start.second
        b = self.end.hour * 3600 + self.end.minute * 60 + self.end.second
        return [(a, b)] if a < b else [(a, 86400), (0, b)]


class LiveConfig(Strict):
    """`fabbrica twin live CONFIG.yaml`: see twinloop/live-sample.yaml for every key."""

    line: str = Field(min_length=1)
    line_name: str | None = Field(default=None, min_length=1)
    source: str | dict[str, Any]
    sink: str | dict[str, Any] | None = None
    every: Duration = Field(default=60.0, gt=0)
    deadline: Duration | None = Field(default=None, gt=0)
    replications: int = Field(default=100, ge=2)
    workers: int = Field(default=1, ge=1)
    seed: int | None = Field(default=None, ge=0)
    engine: Literal["auto", "simpy", "event", "flow"] | None = None
    speed: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    timezone: str = "UTC"
    shifts: list[Shift] = Field(min_length=1)
    fan_step: Duration = Field(default=600.0, gt=0)
    stale_after: Duration = Field(default=300.0, gt=0)
    score_delay: Duration = Field(default=10.0, ge=0)
    state_file: str = Field(default="live-state.json", min_length=1)
    advise: LiveAdvice | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Rome)") from None
        return value

    @field_validator("source")
    @classmethod
    def _some_source(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a historian file, an InfluxDB URL or a file with a `sink:`")
        return value

    @model_validator(mode="after")
    def _shifts_apart(self) -> LiveConfig:
        names = [shift.name for shift in self.shifts]
        for index, shift in enumerate(self.shifts):
            if names.index(shift.name) != index:
                raise FieldError(f"shifts[{index}].name", f"{shift.name!r} is used twice")
            for other in self.shifts[:index]:
                if any(a < d and c < b for a, b in shift.seconds() for c, d in other.seconds()):
                    raise FieldError(f"shifts[{index}]", f"overlaps shift {other.name!r}")
        return self

    @property
    def forecast_deadline(self) -> float:
        """How long a tick's forecast may run before it is abandoned (default: `every`)."""
        return self.deadline if self.deadline is not None else self.every


@dataclass(frozen=True)
class ShiftWindow:
    """One shift on one day: its name, its UTC start and end, its target and its local date."""

    name: str
    start: datetime
    end: datetime
    target: int | None
    date: date

    @property
    def key(self) -> str:
        return f"{self.name}@{self.start.isoformat()}"

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Calendar:
    """The shifts of every day in one time zone."""

    shifts: tuple[Shift, ...]
    zone: ZoneInfo

    def shift_at(self, instant: datetime) -> ShiftWindow | None:
        """The shift `instant` falls in (start <= instant < end), or None between shifts."""
        local = instant.astimezone(self.zone)
        for shift in self.shifts:
            for days in (0, -1):
                day = local.date() + timedelta(days=days)
                window = self.window(shift, day)
                if window.start <= instant < window.end:
                    return window
        return None

    def window(self, shift: Shift, day: date) -> ShiftWindow:
        """`shift` starting on local `day`."""
        start = datetime.combine(day, shift.start, self.zone)
        end_day = day if shift.end > shift.start else day + timedelta(days=1)
        end = datetime.combine(end_day, shift.end, self.zone)
        return ShiftWindow(shift.name, start.astimezone(UTC), end.astimezone(UTC), shift.target, day)


@dataclass(frozen=True)
class LiveSetup(ReadsHistory):
    """A read configuration: the model, the line, its file's folder, where to read and where to write."""

    config: LiveConfig
    path: Path
    line: Line
    line_tag: str
    source_label: str
    source: str | SinkSettings  # a --source string or a sink's settings
    sink: SinkSettings
    calendar: Calendar
    state_path: Path
    limits: Limits | None = None  # the advice's limits (with `advise:`)
    objective: Objective | None = None  # the advice's objective (with `advise:`)


def read_live_config(path: str | Path, environ: Mapping[str, str] | None = None) -> LiveSetup:
    """Read and validate CONFIG.yaml; LiveConfigError (one line naming file and field) on any problem.

    `${ENV}` is replaced in the `source` and `sink` sections and in `advise.apply`; the secrets it
    put there are hidden in every log from here on. Relative paths are taken against the file's folder.
    """
    file = Path(path)
    data = read_mapping(file, LiveConfigError, "a mapping (line, source, shifts, ...)")
    environ = os.environ if environ is None else environ
    secrets: set[str] = set()
    for key in ("source", "sink"):
        if isinstance(data.get(key), dict):
            try:
                data[key] = substitute(data[key], environ, secrets, key)
            except EnvError as exc:
                raise LiveConfigError(f"{file}: {exc.path}: {exc.message}") from None
    if isinstance(data.get("advise"), dict):
        advise = dict(data["advise"])
        secrets |= substituted(advise, environ, file, "advise.", LiveConfigError)
        data["advise"] = advise
    try:
        config = LiveConfig.model_validate(data)
    except ValidationError as exc:
        raise LiveConfigError(validation_message(str(file), exc)) from None
    hide_in_logs(secrets)
    base = file.resolve().parent
    line_file = relative(config.line, base)
    try:
        line = load_line(line_file)
    except InputError as exc:
        raise LiveConfigError(f"{file}: line: {exc}") from None
    source, label = source_of(config.source, base, file)
    sink = sink_of(config.sink, source, base, file, environ)
    limits = objective = None
    if config.advise is not None:
        try:
            check_against_line(line, config.advise, "advise.")
        except FieldError as exc:
            raise LiveConfigError(f"{file}: {exc.path}: {exc.message}") from None
        limits = limits_of(line, config.advise)
        objective = config.advise.objective.objective()
    return LiveSetup(
        config=config,
        path=file,
        line=line,
        line_tag=config.line_name or line.name,
        source_label=label,
        source=source,
        sink=sink,
        calendar=Calendar(tuple(config.shifts), ZoneInfo(config.timezone)),
        state_path=relative(config.state_file, base),
        limits=limits,
        objective=objective,
    )


def relative(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _sink_section(value: dict[str, Any], key: str, file: Path, base: Path) -> SinkSettings:
    """A `type:` mapping as the settings of a registered sink, relative paths against `base`."""
    try:
        settings: SinkSettings = TypeAdapter(SinkConfig).validate_python(value)
    except ValidationError as exc:
        first: dict[str, Any] = dict(exc.errors(include_url=False)[0])
        first["loc"] = (key, *(part for part in first["loc"] if part not in SINK_TYPES))
        field, message = format_error(first)
        raise LiveConfigError(f"{file}: {field}: {message}") from None
    return settings.resolved(base)


def source_of(value: str | dict[str, Any], base: Path, file: Path) -> tuple[str | SinkSettings, str]:
    """What `twinloop.history` reads: a --source string (paths made absolute) or a sink section."""
    if isinstance(value, dict):
        return _sink_section(value, "source", file, base), f"{file}: source"
    if _is_url(value):
        if not urlparse(value).path.strip("/"):
            raise LiveConfigError(
                f"{file}: source: {value}: give the database as the URL's path, e.g. http://host:8086/plant"
            )
        return value, f"{file}: source: {value}"
    path = relative(value, base)
    if not path.exists():
        raise LiveConfigError(f"{file}: source: {value}: no such file")
    return str(path), f"{file}: source: {value}"


def sink_of(
    value: str | dict[str, Any] | None,
    source: str | SinkSettings,
    base: Path,
    file: Path,
    environ: Mapping[str, str],
) -> SinkSettings:
    """Where the forecasts go: `sink:` if given, else where `source` reads."""
    from twinloop.results import sink_from_file

    if isinstance(value, dict):
        return _sink_section(value, "sink", file, base)
    if isinstance(value, str):
        try:
            return sink_from_file(relative(value, base), environ, option=f"{file}: sink")[0]
        except InputError as exc:
            raise LiveConfigError(f"{file}: sink: {exc}") from None
    if isinstance(source, SinkSettings):
        return source
    if _is_url(source):
        parsed = urlparse(source)
        password = environ.get("INFLUX_PASSWORD")
        if password:
            hide_in_logs([password])
        return InfluxDB1Sink(
            type="influxdb1",
            url=f"{parsed.scheme}://{parsed.netloc}",  # type: ignore[arg-type]
            database=parsed.path.strip("/"),
            username=environ.get("INFLUX_USERNAME"),
            password=password,  # type: ignore[arg-type]
        )
    if Path(source).suffix in (".yaml", ".yml"):
        try:
            return sink_from_file(Path(source), environ, option=f"{file}: source")[0]
        except InputError as exc:
            raise LiveConfigError(f"{file}: source: {exc}") from None
    return EmbeddedSink(type="embedded", path=source)


# -- the sample in the docs ------------------------------------------------------------------------

DOCS = HERE.parent / "docs" / "live-twin.md"
BEGIN = "<!-- live-sample.yaml: generated by python -m twinloop.live_config --docs -->"
END = "<!-- end of live-sample.yaml -->"


def rendered_docs(text: str) -> str:
    """`text` (docs/live-twin.md) with the sample copied between the markers."""
    head, found, rest = text.partition(BEGIN)
    if not found:
        raise ValueError(f"{DOCS}: no {BEGIN!r} marker")
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n```yaml\n{SAMPLE.read_text()}```\n{END}{tail}"


def main(argv: list[str]) -> int:
    """`--docs`: copy the sample into docs/live-twin.md; `--docs --check`: exit 1 if it is stale."""
    if "--docs" not in argv:
        print("usage: python -m twinloop.live_config --docs [--check]", file=sys.stderr)
        return 2
    text = DOCS.read_text()
    fresh = rendered_docs(text)
    if fresh == text:
        return 0
    if "--check" in argv:
        print(f"stale sample in {DOCS} (run python -m twinloop.live_config --docs)", file=sys.stderr)
        return 1
    DOCS.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

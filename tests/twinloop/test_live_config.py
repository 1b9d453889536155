"""The live twin's configuration, shift calendar and points, without a server.

The sample config is the reference for the format: it loads, it names every key of the
model, and docs/live-twin.md shows it verbatim. A bad config is one line naming the file and
the field, with exit code 2.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from fabbrica.cli import app
from tests.conftest import DEMONSTRATOR
from twinloop.live import ShiftRecord, fan_instants, forecast_points, score_points
from twinloop.live_config import (
    DOCS,
    SAMPLE,
    Calendar,
    LiveConfig,
    Shift,
    ShiftWindow,
    read_live_config,
    rendered_docs,
)

runner = CliRunner()


def test_the_sample_loads_and_names_every_key() -> None:
    setup = read_live_config(SAMPLE)
    assert setup.line.name == "demonstrator" and setup.line_tag == "demonstrator"
    assert setup.sink == setup.source  # no sink: the forecasts go where the history is read
    assert [shift.name for shift in setup.config.shifts] == ["early", "late", "night"]
    assert setup.state_path == SAMPLE.parent / "live-state.json"
    text = SAMPLE.read_text()
    missing = [key for key in LiveConfig.model_fields if not re.search(rf"^#? ?{key}:", text, re.M)]
    assert not missing, f"keys the sample does not show: {missing}"


def test_the_docs_show_the_sample() -> None:
    text = DOCS.read_text()
    assert rendered_docs(text) == text, "run python -m twinloop.live_config --docs"


def _write(folder: Path, **changes: object) -> Path:
    data: dict[str, object] = {
        "line": str(DEMONSTRATOR),
        "source": "http://127.0.0.1:8086/plant",
        "shifts": [{"name": "early", "start": "06:00", "end": "14:00", "target": 300}],
        **changes,
    }
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_defaults_and_a_source_url(tmp_path: Path) -> None:
    setup = read_live_config(_write(tmp_path), environ={"INFLUX_USERNAME": "twin", "INFLUX_PASSWORD": "pw"})
    config = setup.config
    assert (config.every, config.forecast_deadline, config.replications, config.speed) == (
        60.0,
        60.0,
        100,
        1.0,
    )
    assert setup.sink.type == "influxdb1" and setup.sink.database == "plant"  # type: ignore[attr-defined]
    assert setup.sink.username == "twin"  # type: ignore[attr-defined]
    historian = tmp_path / "historian.duckdb"
    historian.write_bytes(b"")
    setup = read_live_config(_write(tmp_path, source="historian.duckdb", deadline="20s"))
    assert setup.sink.type == "embedded" and Path(setup.sink.path) == historian  # type: ignore[attr-defined]
    assert setup.config.forecast_deadline == 20.0


BAD = {
    "no shifts": ({"shifts": []}, "shifts: must have at least 1 item(s)"),
    "unquoted time": (
        {"shifts": [{"name": "late", "start": 840, "end": "22:00"}]},
        'shifts[0].start: write times of day in quotes, e.g. "14:00"',
    ),
    "not a time": (
        {"shifts": [{"name": "x", "start": "25:00", "end": "06:00"}]},
        "shifts[0].start: must be a time",
    ),
    "empty shift": (
        {"shifts": [{"name": "x", "start": "06:00", "end": "06:00"}]},
        "shifts[0].end: equals start",
    ),
    "overlap": (
        {
            "shifts": [
                {"name": "a", "start": "06:00", "end": "14:00"},
                {"name": "b", "start": "22:00", "end": "07:00"},
            ]
        },
        "shifts[1]: overlaps shift 'a'",
    ),
    "same name": (
        {
            "shifts": [
                {"name": "a", "start": "06:00", "end": "14:00"},
                {"name": "a", "start": "14:00", "end": "22:00"},
            ]
        },
        "shifts[1].name: 'a' is used twice",
    ),
    "zone": ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
    "every": ({"every": "-1s"}, "every: "),
    "unknown key": ({"evry": "1min"}, "evry: unknown key"),
    "replications": ({"replications": 1}, "replications: must be >= 2"),
    "source file": ({"source": "nowhere.duckdb"}, "source: nowhere.duckdb: no such file"),
    "source URL": ({"source": "http://127.0.0.1:8086"}, "source: http://127.0.0.1:8086: give the database"),
    "sink type": ({"sink": {"type": "kafka"}}, "sink: type must be one of: influxdb1, influxdb2, embedded"),
    "sink field": (
        {"sink": {"type": "influxdb1", "url": "http://x:8086"}},
        "sink.database: required field missing",
    ),
    "line": ({"line": "nowhere.yaml"}, "nowhere.yaml: file not found"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_config_is_one_line_and_exit_code_2(case: str, tmp_path: Path) -> None:
    changes, expected = BAD[case]
    path = _write(tmp_path, **changes)
    result = runner.invoke(app, ["twin", "live", str(path), "--once"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
    assert expected in lines[0], lines[0]


def test_at_needs_once(tmp_path: Path) -> None:
    result = runner.invoke(app, ["twin", "live", str(_write(tmp_path)), "--at", "2026-12-02T10:00:00Z"])
    assert result.exit_code == 2 and result.stderr.strip() == "error: --at: only with --once"


def test_the_calendar_finds_the_shift_of_an_instant() -> None:
    rome = ZoneInfo("Europe/Rome")
    shifts = (
        Shift(name="early", start=time(6), end=time(14), target=300),
        Shift(name="night", start=time(22), end=time(6)),
    )
    calendar = Calendar(shifts, rome)
    local = lambda *args: datetime(*args, tzinfo=rome)  # noqa: E731
    early = calendar.shift_at(local(2026, 12, 2, 10, 40))
    assert early is not None and early.name == "early" and early.target == 300
    assert early.start == local(2026, 12, 2, 6) and early.end == local(2026, 12, 2, 14)
    assert calendar.shift_at(local(2026, 12, 2, 14)) is None  # the end is not in the shift
    late = calendar.shift_at(local(2026, 12, 3, 2, 30))  # after midnight: the night that began the day before
    assert late is not None and late.name == "night" and late.date == date(2026, 12, 2)
    assert late.start == local(2026, 12, 2, 22) and late.end == local(2026, 12, 3, 6)
    # the night the clocks go back (25 Oct 2026, 03:00 CEST -> 02:00 CET) lasts 9 hours
    autumn = calendar.shift_at(local(2026, 10, 25, 4))
    assert autumn is not None and autumn.hours == 9


def _window() -> ShiftWindow:
    start = datetime(2026, 12, 2, 5, tzinfo=UTC)
    return ShiftWindow("early", start, start + timedelta(hours=8), 300, date(2026, 12, 2))


def test_the_fan_lies_on_a_grid_fixed_per_shift() -> None:
    window = _window()
    now = window.start + timedelta(hours=6, minutes=7)
    fan = fan_instants(window, now, 1800)
    half_hours = [window.start + timedelta(minutes=30 * k) for k in (13, 14, 15)]
    assert fan == [*half_hours, window.end]
    later = fan_instants(window, now + timedelta(minutes=1), 1800)
    assert later == fan  # the next tick overwrites the same future instants
    assert fan_instants(window, window.end - timedelta(seconds=1), 1800) == [window.end]


def test_points_count_the_shift_and_scores_compare_with_the_actual_output() -> None:
    window = _window()
    now = window.start + timedelta(hours=6)
    result = {
        "horizon_s": 7200.0,
        "replications": 20,
        "parts_out": {"mean": 80.5, "ci95": 1.0, "p10": 74.0, "p50": 80.0, "p90": 88.0},
        "bottleneck": "assembly",
        "target": {"parts": 300, "probability": 0.4, "eta_s": {"p10": 5400.0, "p50": 7000.0, "p90": None}},
        "path": [{"t_s": 3600.0, "p10": 35.0, "p50": 40.0, "p90": 44.0},
                 {"t_s": 7200.0, "p10": 74.0, "p50": 80.0, "p90": 88.0}],
    }  # fmt: skip
    fan = [now + timedelta(hours=1), window.end]
    forecast, *path = forecast_points("demo", window, now, result, 220, fan, 2.0, 0.5)
    assert forecast.measurement == "forecast" and forecast.tags == {"line": "demo", "shift": "early"}
    assert forecast.time_ns == int(now.timestamp()) * 10**9
    fields = forecast.fields
    assert (fields["p10"], fields["p50"], fields["p90"], fields["mean"]) == (294.0, 300.0, 308.0, 300.5)
    assert fields["produced"] == 220 and fields["target"] == 300 and fields["target_probability"] == 0.4
    assert fields["remaining_s"] == 7200.0 and fields["horizon_s"] == 7200.0
    # ETA in epoch milliseconds, on the wall clock: 5400 line seconds at speed 2 are 45 minutes
    assert fields["eta_p10"] == int((now + timedelta(minutes=45)).timestamp() * 1000)
    assert "eta_p90" not in fields  # not reached by the shift end
    assert [point.time_ns for point in path] == [int(t.timestamp()) * 10**9 for t in fan]
    assert path[0].fields == {"p10": 255.0, "p50": 260.0, "p90": 264.0}
    record = ShiftRecord.of(window)
    record.base = 1000
    record.forecasts = []
    from twinloop.live import Made

    record.forecasts = [
        Made("2026-12-02T11:00:00Z", 220, 294.0, 300.0, 308.0, 300.5),
        Made("2026-12-02T12:30:00Z", 280, 301.0, 304.0, 306.0, 303.9),
    ]
    first, second = score_points("demo", record, 296)
    assert first.tags == {"line": "demo", "shift": "early", "date": "2026-12-02"}
    assert first.time_ns == int(datetime(2026, 12, 2, 11, tzinfo=UTC).timestamp()) * 10**9
    assert first.fields["error"] == -4.0 and first.fields["inside"] == 1 and first.fields["lead_s"] == 7200.0
    assert (
        second.fields["error"] == -8.0 and second.fields["inside"] == 0 and second.fields["abs_error"] == 8.0
    )


def test_a_state_file_it_cannot_read_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "live-state.json").write_text('{"format": "fabbrica-live/0", "shifts": []}')
    result = runner.invoke(app, ["twin", "live", str(_write(tmp_path)), "--once"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'live-state.json'}: not a live twin state file (format must be "
        "'fabbrica-live/1', got 'fabbrica-live/0'); move it away to start afresh"
    )

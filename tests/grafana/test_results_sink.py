"""The twin's records as points (twinloop/results.py) and the commands' sink options."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.common.points import to_line
from fabbrica.cli import app
from foundation.errors import InputError
from twin.engine import simulate
from twin.kpi_catalogue import KPIS, kpis_at, names
from twin.line import line_from_dict, load_line
from twin.station import REPORTED_STATES
from twinloop.results import RUN_FIELDS, sink_options, twin_run_points, validation_points

from ..connectors.conftest import ROOT, influx_rows

runner = CliRunner()
LINE_FILE = ROOT / "simulations" / "lines" / "demonstrator.yaml"


def test_a_run_record_maps_one_to_one_onto_typed_fields() -> None:
    kpis = simulate(load_line(LINE_FILE), horizon=3600.0, warmup=600.0).kpis
    points = twin_run_points(kpis, line="demonstrator", run_id="r1", time_ns=1_700_000_000 * 10**9)
    line, *stations = points
    assert line.measurement == "twin_kpi" and line.tags == {
        "line": "demonstrator",
        "run_id": "r1",
        "source": "twin_run",
    }
    assert isinstance(line.fields["parts_out"], int) and isinstance(line.fields["wip_mean"], float)
    assert line.fields["throughput_per_hour"] == kpis["throughput_per_hour"]
    assert line.fields["bottleneck"] == kpis["bottleneck"]
    assert [point.tags["station"] for point in stations] == list(kpis["stations"])
    for point in stations:
        record = kpis["stations"][point.tags["station"]]
        assert point.fields["oee"] == record["oee"] and isinstance(point.fields["working"], float)
        assert math.isclose(
            point.fields["bottleneck"], record["bottleneck_sole"] + record["bottleneck_shifting"]
        )
        to_line(point)  # valid line protocol


# a line that counts what a plant counts (issue 18): a shift calendar, one technician, preventive
# maintenance by time and by parts, switch-off after idling and power per state
PLANT: dict[str, Any] = {
    "name": "plant",
    "seed": 4,
    "horizon": "30h",
    "warmup": "1h",
    "repair": {"technicians": 1},
    "calendar": {
        "start": "2026-12-07T00:00",  # a Monday
        "shifts": [{"days": "mon-fri", "start": "06:00", "end": "22:00"}],
        "breaks": [{"start": "10:00", "end": "10:30"}],
    },
    "release": {"interarrival": {"dist": "exponential", "mean": 60}},
    "stations": [
        {
            "name": "press",
            "cycle_time": {"dist": "gamma", "mean": 40, "cv": 0.3},
            "failures": {"mtbf": "2h", "mttr": "5min"},
            "maintenance": {"every": "1h", "duration": 300},
            "power": {"working": 12.0, "idle": 2.0, "down": 0.5, "off": 0.2},
        },
        {
            "name": "trim",
            "cycle_time": {"dist": "gamma", "mean": 30, "cv": 0.5},
            "buffer": 2,
            "maintenance": {"parts": 150, "duration": 300},
            "switch_off": {"after": 60, "restart": {"dist": "uniform", "low": 20, "high": 40}},
            "failures": {"mtbf": "2h", "mttr": "5min"},
            "power": {"working": 5.0, "idle": 1.2, "down": 0.3, "setup": 2.0, "off": 0.1},
        },
    ],
}


def test_the_plant_kpis_of_a_run_are_written_with_their_declared_types() -> None:
    kpis = simulate(line_from_dict(PLANT)).kpis
    assert 0 < kpis["planned_share"] < 1 and kpis["stations"]["trim"]["services"] > 0  # the features ran
    line, *stations = twin_run_points(kpis, line="plant", run_id="p1", time_ns=1)
    for declared in kpis_at("line"):
        assert type(line.fields[declared.name]) is declared.type, declared.name
        assert line.fields[declared.name] == kpis[declared.name], declared.name
    for point in stations:
        record = kpis["stations"][point.tags["station"]]
        for declared in kpis_at("station"):
            assert type(point.fields[declared.name]) is declared.type, declared.name
            assert point.fields[declared.name] == record[declared.name], declared.name
        assert point.fields["energy_kwh"] > 0 and point.fields["planned_stop"] > 0
        to_line(point)
    to_line(line)


def test_an_undefined_optional_kpi_is_left_out_not_written_as_a_bad_value() -> None:
    """A last station too slow to finish a part in the run: its energy per good part is null, and so
    are the line's and the lead times; each is left out of its point, every other KPI is written."""
    data = copy.deepcopy(PLANT)
    data["stations"][1]["cycle_time"] = {"dist": "constant", "value": 10**7}
    kpis = simulate(line_from_dict(data)).kpis
    optional = {declared.name for declared in KPIS if declared.optional}
    assert kpis["stations"]["trim"]["energy_per_good_part_kwh"] is None and kpis["parts_out"] == 0
    assert kpis["stations"]["press"]["energy_per_good_part_kwh"] is not None
    line, press, trim = twin_run_points(kpis, line="plant", run_id="p2", time_ns=1)
    assert set(line.fields) == {*names("line"), *(field.name for field in RUN_FIELDS)} - optional
    assert "energy_per_good_part_kwh" in press.fields
    assert set(trim.fields) == {*names("station"), "bottleneck"} - {"energy_per_good_part_kwh"}
    assert trim.fields["energy_kwh"] > 0 and trim.fields["parts_out"] == 0
    for point in (line, press, trim):
        assert all(value is not None for value in point.fields.values())
        to_line(point)


def test_a_validation_record_keeps_what_was_compared() -> None:
    shares = dict.fromkeys(REPORTED_STATES, 0.0)
    record = {
        "throughput": {"observed": 40.0, "twin_mean": 42.0, "twin_ci95": 1.5, "rel_error": 0.05},
        "stations": {
            "mill": {
                "twin": {**shares, "working": 0.8, "starved": 0.1, "down": 0.04, "waiting_repair": 0.06},
                "observed": {
                    **shares,
                    "working": 0.75,
                    "starved": 0.15,
                    "down": 0.05,
                    "waiting_repair": 0.05,
                },
            },
            "wash": {"twin": dict.fromkeys(REPORTED_STATES, 0.1), "observed": {}},
        },
        "verdict": "invalid",
        "tolerance": 0.05,
        "replications": 5,
        "window_s": 7200.0,
        "checks": {
            "throughput": {"rel_error": 0.05, "ok": True},
            "mill.working": {"rel_error": 0.0667, "ok": False},
            # outside the tolerance, inside the twin's prediction interval: within, as the verdict counts it
            "mill.waiting_repair": {"rel_error": 0.2, "ok": True},
        },
    }
    points = validation_points(record, line="L", run_id="v1", time_ns=1)
    summary = points[0]
    assert summary.measurement == "validation_run" and summary.fields["verdict"] == "invalid"
    assert summary.fields["valid"] == 0
    throughput = points[1]
    assert throughput.tags == {"line": "L", "run_id": "v1", "quantity": "throughput_per_hour"}
    assert throughput.fields["within"] == 1 and throughput.fields["twin_ci95"] == 1.5
    mill = {p.tags["quantity"]: p.fields for p in points if p.tags.get("station") == "mill"}
    assert mill["working"]["rel_error"] == 0.0667 and mill["working"]["within"] == 0
    assert mill["waiting_repair"]["rel_error"] == 0.2 and mill["waiting_repair"]["within"] == 1
    assert mill["starved"] == {"observed": 0.15, "twin": 0.1, "tolerance": 0.05}  # shown, not judged
    assert set(mill) == set(REPORTED_STATES)  # every reported share, the new ones included
    wash = {p.tags["quantity"]: p.fields for p in points if p.tags.get("station") == "wash"}
    assert set(wash["working"]) == {"twin", "tolerance"}  # nothing observed, nothing invented
    assert not [p for p in points if "energy" in p.tags.get("quantity", "")]  # no meters, no energy points
    for point in points:
        to_line(point)


def test_energy_per_good_part_is_written_as_the_validation_checked_it() -> None:
    """The line's and each metered station's kWh per good part, observed against the twin ± 95 %,
    with the meter's kWh, the good parts and the basis; `within` as the check said."""
    shares = dict.fromkeys(REPORTED_STATES, 0.1)
    record = {
        "throughput": {"observed": 40.0, "twin_mean": 40.5, "twin_ci95": 1.5, "rel_error": 0.0125},
        "energy": {
            "observed_kwh": 120.0,
            "basis": "stations",
            "good_parts": 80,
            "observed_per_good_part_kwh": 1.5,
            "twin_per_good_part_kwh": 1.95,
            "twin_ci95": 0.05,
            "rel_error": 0.3,
        },
        "stations": {
            "press": {
                "twin": shares,
                "observed": shares,
                "throughput": {"twin_mean": 40.5, "twin_ci95": 1.5, "observed": 40.0},
                "energy": {
                    "observed_kwh": 100.0,
                    "basis": "energy",
                    "good_parts": 80,
                    "observed_per_good_part_kwh": 1.25,
                    "twin_per_good_part_kwh": 1.625,
                    "twin_ci95": 0.04,
                    "rel_error": 0.3,
                },
            },
            # metered (by its Power samples) but it made no good part: shown, not checked
            "trim": {
                "twin": shares,
                "observed": shares,
                "energy": {
                    "observed_kwh": 20.0,
                    "basis": "Power",
                    "good_parts": 0,
                    "twin_per_good_part_kwh": 0.3,
                    "twin_ci95": 0.01,
                },
            },
            "pack": {"twin": shares, "observed": shares},  # no meter
        },
        "verdict": "invalid",
        "tolerance": 0.05,
        "replications": 5,
        "window_s": 7200.0,
        "checks": {
            "throughput": {"rel_error": 0.0125, "ok": True},
            "energy_per_good_part": {"rel_error": 0.3, "ok": False},
            "press.energy_per_good_part": {"rel_error": 0.3, "ok": False},
        },
    }
    points = validation_points(record, line="L", run_id="v2", time_ns=1)
    energy = {
        p.tags.get("station", "line"): p
        for p in points
        if p.tags.get("quantity", "").endswith("energy_per_good_part_kwh")
    }
    assert set(energy) == {"line", "press", "trim"}
    line = energy["line"]
    assert line.tags == {"line": "L", "run_id": "v2", "quantity": "energy_per_good_part_kwh"}
    assert line.fields == {
        "observed": 1.5,
        "twin": 1.95,
        "twin_ci95": 0.05,
        "rel_error": 0.3,
        "tolerance": 0.05,
        "within": 0,
        "observed_kwh": 120.0,
        "good_parts": 80,
        "basis": "stations",
    }
    press = energy["press"]
    assert press.tags["quantity"] == "station_energy_per_good_part_kwh"
    assert press.fields["observed"] == 1.25 and press.fields["twin"] == 1.625
    assert press.fields["within"] == 0 and press.fields["basis"] == "energy"
    assert isinstance(press.fields["good_parts"], int) and isinstance(press.fields["observed_kwh"], float)
    # no good part, no observed energy per part and no judgement: nothing invented
    assert energy["trim"].fields == {
        "twin": 0.3,
        "twin_ci95": 0.01,
        "tolerance": 0.05,
        "observed_kwh": 20.0,
        "good_parts": 0,
        "basis": "Power",
    }
    for point in points:
        to_line(point)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"influx_database": "plant"}, "--influx-database: needs --influx-url"),
        ({"influx_url": "http://h:8086"}, "give --influx-database (1.x) or --influx-bucket"),
        ({"influx_url": "http://h:8086", "influx_database": "a", "influx_bucket": "b"}, "give one"),
        ({"influx_url": "nowhere", "influx_database": "a"}, "--influx-url"),
    ],
)
def test_bad_sink_options_name_the_option(options: dict, message: str) -> None:
    arguments = {
        "sink_config": None,
        "influx_url": None,
        "influx_database": None,
        "influx_token": None,
        "influx_org": None,
        "influx_bucket": None,
    }
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sink_options(**{**arguments, **options})


def test_sink_config_reads_a_connector_config_with_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "connect.yaml"
    config.write_text(
        "sink: {type: influxdb2, url: http://h:8086, token: '${TEST_TOKEN}', org: o, bucket: b}\n"
        "mqtt: [{url: 'mqtt://h:1883', topics: [{filter: 'a/#'}]}]\n"
    )
    monkeypatch.setenv("TEST_TOKEN", "s3cret-token")
    chosen = sink_options(config, None, None, None, None, None)
    assert chosen is not None
    sink, base = chosen
    assert sink.type == "influxdb2" and sink.token.get_secret_value() == "s3cret-token" and base == tmp_path
    monkeypatch.delenv("TEST_TOKEN")
    with pytest.raises(InputError, match=r"sink\.token: environment variable TEST_TOKEN is not set"):
        sink_options(config, None, None, None, None, None)
    config.write_text("sink: {type: influxdb1, url: http://h:8086}\n")
    with pytest.raises(InputError, match=r"sink\.database"):
        sink_options(config, None, None, None, None, None)


def test_twin_run_writes_to_the_embedded_historian_of_a_connector_config(tmp_path: Path) -> None:
    from connectors.sinks.embedded import Historian

    config = tmp_path / "connect.yaml"
    config.write_text("sink: {type: embedded, path: results.duckdb}\n")
    result = runner.invoke(
        app,
        ["twin", "run", str(LINE_FILE), "--horizon", "2h", "--warmup", "10min", "--sink-config", str(config)],
    )
    assert result.exit_code == 0, result.output
    assert "twin run: 6 points written to embedded" in result.stderr
    historian = Historian(tmp_path / "results.duckdb", read_only=True)
    try:
        stations = historian.query("twin_station")
        assert sorted(stations["station"]) == ["assembly", "lathe", "mill", "test", "wash"]
        assert historian.query("twin_kpi")["parts_out"].iloc[0] > 0
    finally:
        historian.close()


def test_bad_sink_option_exits_2_before_running(tmp_path: Path) -> None:
    result = runner.invoke(app, ["twin", "run", str(LINE_FILE), "--influx-bucket", "plant"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --influx-bucket: needs --influx-url"


def test_experiment_points_landed_with_intervals(dataset) -> None:
    rows = influx_rows(dataset.url, dataset.database, "experiment_bottleneck")
    assert {row["scenario"] for row in rows} == set(dataset.scenarios)
    for scenario in dataset.scenarios:
        shares = [row["total"] for row in rows if row["scenario"] == scenario]
        assert len(shares) == len(dataset.stations)
        assert all(0 <= share <= 1 for share in shares) and max(shares) > 0
    (run,) = influx_rows(dataset.url, dataset.database, "experiment_run")
    assert (
        run["runs"] == 6
        and run["scenarios"] == 2
        and run["text"].startswith(f"experiment {dataset.experiment}")
    )

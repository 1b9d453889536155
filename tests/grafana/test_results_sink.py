"""The twin's records as points (twinloop/results.py) and the commands' sink options."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.common.points import to_line
from fabbrica.cli import app
from foundation.errors import InputError
from twin.engine import simulate
from twin.line import load_line
from twinloop.results import sink_options, twin_run_points, validation_points

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


def test_a_validation_record_keeps_what_was_compared() -> None:
    record = {
        "throughput": {"observed": 40.0, "twin_mean": 42.0, "twin_ci95": 1.5, "rel_error": 0.05},
        "stations": {
            "mill": {
                "twin": {"working": 0.8, "blocked": 0.0, "starved": 0.1, "down": 0.05, "setup": 0.05},
                "observed": {"working": 0.75, "blocked": 0.0, "starved": 0.15, "down": 0.05, "setup": 0.05},
                "working_rel_error": 0.0667,
            },
            "wash": {
                "twin": dict.fromkeys(("working", "blocked", "starved", "down", "setup"), 0.2),
                "observed": {},
            },
        },
        "verdict": "invalid",
        "tolerance": 0.05,
        "replications": 5,
        "window_s": 7200.0,
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
    assert "rel_error" not in mill["starved"]
    wash = {p.tags["quantity"]: p.fields for p in points if p.tags.get("station") == "wash"}
    assert set(wash["working"]) == {"twin", "tolerance"}  # nothing observed, nothing invented


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

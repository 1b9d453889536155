"""The KPI catalogue is the one place a KPI is declared: every other place must follow it.

A KPI computed by `twin.kpis` but not declared, declared but not computed, of another type
than declared, missing from the results sink, the experiment files or the docs: each fails here.
"""

from __future__ import annotations

import pytest

from fabbrica.twin_commands import print_kpis
from twin import kpi_docs
from twin.engine import simulate
from twin.experiments.spec import check_kpi
from twin.flow import simulate_flow
from twin.kpi_catalogue import KPIS, Kpi, kpi, kpis_at, names
from twin.line import Line, line_from_dict
from twinloop.results import RUN_FIELDS, twin_run_points

# serial, one machine per station (so both engines run it), with every kind of loss; in a
# horizon of 30 s no part gets through `test` (35 s) and the lead times are None
SERIAL = {
    "name": "catalogue",
    "horizon": "3h",
    "warmup": "20min",
    "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}],
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 40}, "setup": 20},
        {
            "name": "weld",
            "cycle_time": {"A": {"dist": "lognormal", "mean": 45, "cv": 0.3}, "B": 50},
            "buffer": 2,
            "failures": {"mtbf": "10min", "mttr": "1min"},
            "scrap": 0.05,
        },
        {"name": "test", "cycle_time": 35, "buffer": 1, "ideal_cycle_time": 30},
    ],
}
ENGINES = {"simpy": simulate, "flow": simulate_flow}


def _line(**changes: object) -> Line:
    return line_from_dict({**SERIAL, **changes}, "catalogue")


def _check(value: object, declared: Kpi, where: str) -> None:
    if value is None:
        assert declared.optional, f"{where}: None, but {declared.name} is not declared optional"
    else:
        assert type(value) is declared.type, f"{where}: {type(value).__name__}, declared {declared.type}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("line", [_line(), _line(horizon=30, warmup=0)], ids=["parts out", "none out"])
def test_a_run_reports_exactly_the_declared_kpis_with_their_types(engine: str, line: Line) -> None:
    record = ENGINES[engine](line, seed=5).kpis
    line_level = [k for k in record if k != "stations"]
    assert line_level == [*names("line"), *names("run")]
    for declared in (*kpis_at("line"), *kpis_at("run")):
        _check(record[declared.name], declared, f"{engine}: {declared.name}")
    assert list(record["stations"]) == ["cut", "weld", "test"]
    for station, values in record["stations"].items():
        assert list(values) == list(names("station")), station
        for declared in kpis_at("station"):
            _check(values[declared.name], declared, f"{engine}: {station}.{declared.name}")
            if declared.same_as is not None:
                assert values[declared.name] == values[declared.same_as]


def test_the_none_out_run_shows_the_optional_kpis_as_none() -> None:
    """The run above with no part out does reach the optional KPIs' None (else that test proves less)."""
    record = simulate(_line(horizon=30, warmup=0), seed=5).kpis
    assert record["parts_out"] == 0
    assert {k.name for k in kpis_at("line") if record[k.name] is None} == {
        k.name for k in kpis_at("line") if k.optional
    }


def test_docs_kpis_md_is_generated_from_the_catalogue() -> None:
    assert kpi_docs.main(["--check"]) == 0, "run python -m twin.kpi_docs"
    text = kpi_docs.DOC.read_text()
    for declared in KPIS:
        assert f"| `{declared.name}` |" in text


def test_a_stale_docs_table_is_found() -> None:
    text = kpi_docs.DOC.read_text().replace("| `wip_mean` |", "| `wip_average` |")
    assert kpi_docs.rendered(text) != text


def test_the_results_points_carry_every_declared_kpi_with_its_type() -> None:
    record = simulate(_line(), seed=5).kpis
    line_point, *station_points = twin_run_points(record, line="catalogue", run_id="r", time_ns=1)
    declared_line = (*kpis_at("line"), *RUN_FIELDS)
    assert set(line_point.fields) == {k.name for k in declared_line}
    for declared in declared_line:
        assert type(line_point.fields[declared.name]) is declared.type, declared.name
    for point in station_points:
        # and `bottleneck`, the sum of the two bottleneck shares, for the dashboards
        assert set(point.fields) == {*names("station"), "bottleneck"}
        for declared in kpis_at("station"):
            assert type(point.fields[declared.name]) is declared.type, declared.name


def test_experiments_may_ask_for_every_numeric_kpi_and_only_those() -> None:
    for declared in kpis_at("line"):
        if declared.type is str:
            with pytest.raises(ValueError, match="unknown KPI"):
                check_kpi(declared.name)
        else:
            assert check_kpi(declared.name) == declared.name
    for declared in kpis_at("station"):
        assert check_kpi(f"stations.weld.{declared.name}")
    for declared in kpis_at("run"):
        with pytest.raises(ValueError, match="unknown KPI"):
            check_kpi(declared.name)


def test_the_cli_table_shows_every_line_kpi_by_its_label(capsys: pytest.CaptureFixture[str]) -> None:
    print_kpis("catalogue", simulate(_line(), seed=5).kpis)
    shown = capsys.readouterr().out
    for declared in kpis_at("line"):
        assert declared.label in shown, declared.name
    assert "lead time mean (min)" in shown and "throughput (parts/h)" in shown


def test_an_unknown_kpi_is_refused_by_name() -> None:
    assert kpi("wip_mean").unit == "parts"
    with pytest.raises(KeyError, match="no station KPI 'wip_mean'"):
        kpi("wip_mean", "station")
    with pytest.raises(ValueError, match="level"):
        Kpi("x", "plant", float, "", "x", "x")  # type: ignore[arg-type]

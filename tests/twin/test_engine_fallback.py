"""`engine: auto` says why a line runs on the SimPy engine: one line in the record's `engine_fallback`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_fabbrica
from twin.engine import LineModel
from twin.flow import flow_obstacle
from twin.line import LineError, line_from_dict, load_line
from twin.run import run_line

ROOT = Path(__file__).resolve().parents[2]
DEMONSTRATOR = ROOT / "simulations/lines/demonstrator.yaml"
ASSEMBLY = ROOT / "simulations/lines/assembly.yaml"


def test_the_record_names_the_field_that_rules_out_the_flow_engine() -> None:
    line = load_line(DEMONSTRATOR, {"horizon": 3600.0, "warmup": 0.0})
    record = run_line(line).kpis
    assert record["engine"] == "event"  # the compiled event engine runs it, not the flow engine
    reason = record["engine_fallback"]
    assert reason == flow_obstacle(line) and reason.startswith("stations[") and "\n" not in reason
    assert run_line(line, engine="simpy").kpis["engine_fallback"] is None  # chosen by hand
    assert run_line(line, engine="event").kpis["engine_fallback"] is None


def test_a_network_runs_on_the_event_engine_and_says_why_not_the_flow_engine() -> None:
    network = load_line(ASSEMBLY, {"horizon": 3600.0, "warmup": 0.0})
    record = run_line(network).kpis
    assert (record["engine"], record["engine_fallback"]) == ("event", flow_obstacle(network))
    assert record["engine_fallback"].startswith("routes: ") and "\n" not in record["engine_fallback"]
    with pytest.raises(LineError, match=r"^engine: flow cannot run this line: routes: "):
        run_line(network, engine="flow")


class _Counter:
    """An observer: it hears every state change, so only the SimPy engine can serve it."""

    def __init__(self) -> None:
        self.changes = 0

    def machine_state(self, *args: object) -> None:
        self.changes += 1

    def part_finished(self, *args: object) -> None:
        pass


def test_an_observer_or_setpoints_keep_the_simpy_engine_and_say_so() -> None:
    line = load_line(DEMONSTRATOR, {"horizon": 1800.0, "warmup": 0.0})
    observer = _Counter()
    record = run_line(line, observer=observer).kpis  # type: ignore[arg-type]
    assert record["engine"] == "simpy" and observer.changes > 0
    assert record["engine_fallback"].startswith("an observer") and "\n" not in record["engine_fallback"]
    with pytest.raises(LineError, match=r"^engine: event cannot report to an observer"):
        run_line(line, engine="event", observer=observer)  # type: ignore[arg-type]
    released = load_line(ROOT / "simulations/lines/released.yaml", {"horizon": 1800.0, "warmup": 0.0})
    record = run_line(released, setpoints={"release.interarrival.mean": 90.0}).kpis
    assert record["engine"] == "simpy"
    assert record["engine_fallback"] == "setpoints written during the run need the simpy engine"


def test_a_run_from_a_state_takes_the_event_engine() -> None:
    line = load_line(DEMONSTRATOR, {"horizon": 3600.0, "warmup": 0.0})
    model = LineModel(line, 2)
    model.env.run(until=900.0)
    record = run_line(line, state=model.snapshot(), horizon=600.0, warmup=0.0).kpis
    assert (record["engine"], record["engine_fallback"]) == ("event", flow_obstacle(line))


def test_a_line_the_flow_engine_runs_has_no_fallback() -> None:
    chain = line_from_dict({"stations": [{"name": "a", "cycle_time": 10}, {"name": "b", "cycle_time": 9}]})
    record = run_line(chain).kpis
    assert (record["engine"], record["engine_fallback"]) == ("flow", None)


@pytest.mark.parametrize("engine", [None, "simpy"])
def test_the_command_prints_it(engine: str | None) -> None:
    options = ["--horizon", "1h", "--warmup", "0", "--json"] + (["--engine", engine] if engine else [])
    done = run_fabbrica("twin", "run", str(DEMONSTRATOR), *options)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["engine_fallback"] is None) == (engine == "simpy")
    help_text = run_fabbrica("twin", "run", "--help").stdout
    assert "engine_fallback" in help_text

"""The parts of the simulated hardware that need no server: config, states, signals, clock, runtime."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import simpy
import yaml
from typer.testing import CliRunner

from fabbrica.cli import app
from simulations.hardware.clock import ScaledClock
from simulations.hardware.config import HardwareConfig, HardwareError, SignalSpec, load_hardware
from simulations.hardware.runtime import LineRuntime, Timeline, occupancy
from simulations.hardware.signals import SignalBank, station_generator
from simulations.hardware.states import (
    EXECUTING,
    MACHINERY_ITEM_STATE,
    NOT_EXECUTING,
    OUT_OF_SERVICE,
    PACKML_STATE,
    station_state,
)
from simulations.hardware.truth import truth_record, truth_state
from tests.hardware.conftest import FAST_LINE, ROOT, start_serving
from twin.line import line_from_dict, load_line
from twin.station import BLOCKED, DOWN, STARVED, STATE_NAMES, STOPPED, WAITING_REPAIR, WORKING


def test_every_state_maps_to_machinery_and_packml() -> None:
    assert MACHINERY_ITEM_STATE[WORKING] == EXECUTING
    assert MACHINERY_ITEM_STATE[DOWN] == OUT_OF_SERVICE
    assert MACHINERY_ITEM_STATE[STARVED] == MACHINERY_ITEM_STATE[BLOCKED] == NOT_EXECUTING
    assert set(PACKML_STATE) == set(MACHINERY_ITEM_STATE) == set(range(len(STATE_NAMES)))
    assert PACKML_STATE[WORKING] == 6 and PACKML_STATE[STOPPED] == 2 and PACKML_STATE[DOWN] == 11
    # waiting for a technician: out of service and held, as under repair
    assert MACHINERY_ITEM_STATE[WAITING_REPAIR] == OUT_OF_SERVICE and PACKML_STATE[WAITING_REPAIR] == 11


def test_a_station_shows_its_most_significant_machine_state() -> None:
    assert station_state([STARVED, WORKING]) == WORKING
    assert station_state([STARVED, DOWN]) == DOWN
    assert station_state([STOPPED, STARVED]) == STARVED
    assert station_state([STOPPED, STOPPED]) == STOPPED


def test_hardware_defaults_and_overrides() -> None:
    config = load_hardware(None, {"speed": 60, "mqtt.prefix": "plant", "opcua.enabled": False})
    assert config.speed == 60 and config.mqtt.prefix == "plant" and not config.opcua.enabled
    assert config.opcua.endpoint == "opc.tcp://127.0.0.1:4840"
    assert [s.name for s in config.opcua.signals] == ["SpindleSpeed", "Temperature", "Power"]
    assert [s.name for s in config.mqtt.sensors] == ["energy", "vibration", "ambient"]
    assert config.mqtt.port == 1883 and config.mqtt.prefix == "plant"
    assert HardwareConfig.model_validate({"mqtt": {"url": "mqtts://u:p@broker"}}).mqtt.credentials == (
        "u",
        "p",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("opcua:\n  endpoint: http://x\n", "opcua.endpoint"),
        ("mqtt:\n  sensors: [{name: a}, {name: a}]\n", "duplicate name 'a'"),
        ("opcua:\n  security: {colour: red}\n", "opcua.security.colour: unknown key"),
        ("speed: 0\n", "speed: must be > 0"),
        ("opcua:\n  security: {policies: [Basic128]}\n", "opcua.security.policies[0]"),
    ],
)
def test_a_bad_hardware_file_names_the_field(tmp_path: Path, data: str, message: str) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text(data)
    with pytest.raises(HardwareError, match=r"hw\.yaml: ") as error:
        load_hardware(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    line = tmp_path / "line.yaml"
    line.write_text("name: x\nstations: [{name: a, cycle_time: 10}]\n")
    runner = CliRunner()
    for args in (
        [str(tmp_path / "missing.yaml")],
        [str(line), "--duration", "soon"],
        [str(line), "--speed", "-1"],
        [str(line), "--opcua", "http://127.0.0.1:1"],
    ):
        result = runner.invoke(app, ["line", "serve", *args])
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_signals_follow_the_state_and_energy_is_the_exact_integral() -> None:
    power = SignalSpec(name="Power", levels={"working": 8.0}, idle=1.0, tau=0.0, spread=0.0, noise=0.0)
    energy = power.model_copy(update={"name": "Energy", "integrate": True})
    bank = SignalBank([power, energy], station_generator(1, "mill", "signals"), STARVED)
    bank.advance(3600.0, STARVED)  # one hour idle: 1 kWh
    values = bank.sample(7200.0, WORKING)  # one hour working: 8 kWh more
    assert values[0] == pytest.approx(8.0)
    assert values[1] == pytest.approx(9.0)


def test_signal_noise_is_per_station_and_reproducible() -> None:
    spec = SignalSpec(name="Temperature", levels={"working": 40.0}, idle=30.0, noise=0.5, tau=60.0)

    def series(station: str, seed: int) -> np.ndarray:
        bank = SignalBank([spec], station_generator(seed, station, "signals"), WORKING)
        return np.array([bank.sample(float(t), WORKING)[0] for t in range(1, 200)])

    assert np.array_equal(series("mill", 3), series("mill", 3))
    assert not np.array_equal(series("mill", 3), series("lathe", 3))
    assert not np.array_equal(series("mill", 3), series("mill", 4))
    assert abs(series("mill", 3).mean() - 40.0) < 3.0


def test_timeline_merges_changes_at_one_instant_but_keeps_published_ones() -> None:
    timeline = Timeline()
    timeline.record(0.0, STARVED)
    timeline.record(0.0, WORKING)  # never seen starved
    assert timeline.entries == [(0.0, WORKING)]
    timeline.record(5.0, BLOCKED)
    timeline.record(5.0, WORKING)  # back to where it was: no change at all
    assert timeline.entries == [(0.0, WORKING)]
    assert timeline.take() == [(0.0, WORKING)]
    timeline.record(0.0, DOWN)  # published entries stay
    assert timeline.entries == [(0.0, WORKING), (0.0, DOWN)]


def test_runtime_counts_match_the_machines_and_stop_start_act_on_them() -> None:
    line = line_from_dict(FAST_LINE)
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line, config, seed=3)
    runtime.env.run(until=1800)
    for station in runtime.stations:
        processed = sum(machine.processed for machine in station.machines)
        assert station.parts_produced + station.parts_scrapped == processed
        assert station.values["PartsProduced"].entries[-1][1] == station.parts_produced
        times = [t for t, _ in station.states.entries]
        assert times == sorted(times) and len(set(times)) == len(times)
    assert runtime.signal_samples, "process signals are sampled inside the simulation"
    runtime.command("weld", "Stop")
    runtime.env.run(until=1900)
    assert runtime.by_name["weld"].state == STOPPED
    produced = runtime.by_name["weld"].parts_produced
    runtime.env.run(until=2000)
    assert runtime.by_name["weld"].parts_produced == produced
    runtime.command("weld", "Start")
    runtime.env.run(until=2300)
    assert runtime.by_name["weld"].parts_produced > produced
    assert [c for _, c in runtime.by_name["weld"].commands] == ["Stop", "Start"]


def test_the_clock_catches_up_after_a_stall_and_reports_the_lag() -> None:
    env = simpy.Environment()
    seen: list[float] = []

    def stall() -> simpy.events.ProcessGenerator:
        yield env.timeout(2.0)
        time.sleep(0.6)  # the computer is busy: 0.6 s of wall time inside one event
        while True:
            seen.append(env.now)
            yield env.timeout(0.5)

    env.process(stall())
    clock = ScaledClock(env, speed=10.0, tick=0.02, lag_warning=0.3)

    async def run() -> None:
        async def publish() -> None:
            return None

        await clock.run(asyncio.Event(), publish, until=1.5)

    started = time.monotonic()
    asyncio.run(run())
    wall = time.monotonic() - started
    assert env.now == pytest.approx(15.0)
    assert seen[0] == pytest.approx(2.0) and len(seen) == 26  # nothing skipped while catching up
    assert clock.lag.max_s >= 0.5 and clock.lag.late_steps >= 1
    assert wall < 1.5 + 0.6 + 1.5, "it caught up instead of drifting"
    assert clock.utc(15.0).timestamp() == pytest.approx(clock.start_epoch + 1.5)


def test_the_sample_hardware_file_holds_the_defaults_and_the_docs_show_it() -> None:
    sample = ROOT / "simulations" / "hardware" / "sample-hardware.yaml"
    assert load_hardware(sample) == HardwareConfig()
    docs = (ROOT / "docs" / "simulated-hardware.md").read_text()
    body = "".join(sample.read_text().splitlines(keepends=True)[3:])  # without the heading comment
    assert f"```yaml\n{body}```" in docs, "copy simulations/hardware/sample-hardware.yaml into the docs"


def test_sigterm_ends_the_run_and_writes_the_truth(tmp_path: Path) -> None:
    line = tmp_path / "line.yaml"
    line.write_text(yaml.safe_dump(FAST_LINE))
    truth = tmp_path / "truth.json"
    served = start_serving(
        [str(line), "--speed", "100", "--opcua", "none", "--mqtt", "none"], truth=truth, endpoint=""
    )
    assert served.out[-1].strip() == "serving line pilot at speed 100: no servers"
    time.sleep(0.5)
    assert served.stop(signal.SIGTERM) == 0
    record = json.loads(truth.read_text())
    assert record["opcua"] is None and record["mqtt"] is None
    assert record["simulated_s"] > 0 and record["stations"]["cut"]["states"]


def test_noise_depends_on_the_state() -> None:
    spindle = next(spec for spec in HardwareConfig().opcua.signals if spec.name == "SpindleSpeed")
    bank = SignalBank([spindle], station_generator(2, "mill", "signals"), STARVED)
    idle = [bank.sample(float(t), STARVED)[0] for t in range(1, 50)]
    assert set(idle) == {0.0}, "a stopped spindle reads a steady 0"
    working = np.array([bank.sample(float(t), WORKING)[0] for t in range(100, 400)])
    assert 10 < working.std() < 60 and abs(working.mean() - 12000) < 1500


def test_what_the_plcs_show_of_parallel_machines_and_released_orders_calibrates_the_line() -> None:
    """The PLC timelines (as a historian stores them) give calibration each machine's states and
    every released order: the same records an observer of the engine collects."""
    import pandas as pd

    from twin.calibration.records import Recorder
    from twinloop.history import load_records

    data = {**FAST_LINE, "release": {"interarrival": {"dist": "gamma", "mean": 25, "cv": 0.5}}}
    data["stations"] = [{**s, "buffer": 4} if i == 0 else s for i, s in enumerate(FAST_LINE["stations"])]
    line = line_from_dict(data)
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line, config, seed=9)
    recorder = Recorder([s.name for s in line.stations], capacities=[s.capacity for s in line.stations])
    observers = (runtime, recorder)

    class Both:  # the runtime is the model's observer; the recorder listens alongside
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return lambda *args: [getattr(o, name)(*args) for o in observers]

    runtime.model.observer = Both()
    for machines in runtime.model.machines:
        for machine in machines:
            machine.observer = runtime.model.observer
    runtime.model.release.on_release = runtime.model.observer.part_released  # type: ignore[union-attr]
    runtime.env.run(until=4 * 3600)

    origin = pd.Timestamp("2026-01-01T00:00:00Z")
    at = lambda t: origin + pd.Timedelta(seconds=t)  # noqa: E731
    rows = []
    for station in runtime.stations:
        for field, timeline in station.values.items():
            rows += [
                {"time": at(t), "line": line.name, "station": station.name, field: v}
                for t, v in timeline.entries
            ]
        rows += [
            {"time": at(t), "line": line.name, "station": station.name, "State": s}
            for t, s in station.states.entries
        ]
    machine = pd.DataFrame(rows).sort_values("time", kind="stable")

    def read(measurement: str, lo: int, hi: int) -> pd.DataFrame:
        return machine if measurement == "machine" else pd.DataFrame()

    end = origin + pd.Timedelta(hours=4)
    records, window, _, _, _ = load_records(read, line, origin.to_pydatetime(), end.to_pydatetime(), 1.0)
    assert window == pytest.approx(4 * 3600)
    assert records["cut"].release_times == pytest.approx(recorder.records["cut"].release_times)
    assert len(records["cut"].release_times) == runtime.parts_released > 400
    pack, truth = records["pack"], recorder.records["pack"]
    assert len(pack.machines) == 2
    for seen, machine_truth in zip(pack.machines, truth.machines, strict=True):
        got, expected = seen.intervals(window), machine_truth.intervals(window)
        assert [state for state, _, _ in got] == [state for state, _, _ in expected]
        ends = [t for _, a, b in expected for t in (a, b)]
        assert [t for _, a, b in got for t in (a, b)] == pytest.approx(ends)


@pytest.mark.parametrize("release", ["saturated", {"interarrival": {"dist": "exponential", "mean": 22}}])
def test_the_occupancies_add_up_to_the_parts_in_the_line_at_every_refresh(release: object) -> None:
    data = {**FAST_LINE, "release": release}
    data["stations"] = [{**s, "buffer": 3} if i == 0 else s for i, s in enumerate(FAST_LINE["stations"])]
    calendar = {"mtbf": 300, "mttr": 30, "basis": "calendar"}
    data["stations"].append({"name": "wash", "cycle_time": 12, "buffer": 0, "failures": calendar})
    line = line_from_dict(data)
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line, config, seed=4)
    snapshots: list[tuple[float, int]] = []

    def snapshot():  # type: ignore[no-untyped-def]
        while True:  # runs right after the runtime's counter refresh at the same instants
            snapshots.append((runtime.env.now, runtime.model.wip))
            yield runtime.env.timeout(10.0)

    runtime.env.process(snapshot())
    runtime.env.run(until=3 * 3600)

    def value_at(timeline: Timeline, t: float) -> float:
        return [v for time, v in timeline.entries if time <= t][-1]

    totals = [sum(value_at(s.values["Occupancy"], t) for s in runtime.stations) for t, _ in snapshots]
    assert totals == [wip for _, wip in snapshots]
    assert max(totals) >= 5


@pytest.mark.parametrize(
    "release",
    ["saturated", {"interarrival": {"dist": "exponential", "mean": 22}}, {"conwip": 6}],
)
def test_the_occupancy_integral_is_exact_at_every_refresh(release: object) -> None:
    """OccupancySeconds at each refresh equals the integral of the station's occupancy, computed
    here after every single engine event, and their sum the engine's own integral of its WIP."""
    data = {**FAST_LINE, "release": release}
    data["stations"] = [{**s, "buffer": 3} if i == 0 else s for i, s in enumerate(FAST_LINE["stations"])]
    calendar = {"mtbf": 300, "mttr": 30, "basis": "calendar"}
    data["stations"].append({"name": "wash", "cycle_time": 12, "buffer": 0, "failures": calendar})
    line = line_from_dict(data)
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line, config, seed=4)
    env, model = runtime.env, runtime.model

    def held() -> list[int]:
        return [occupancy(s.machines, model.buffers[s.index]) for s in runtime.stations]

    area = [0.0] * len(runtime.stations)
    last_t, last = 0.0, held()
    expected: dict[float, list[float]] = {}
    engine: dict[float, float] = {}
    commands = {2000.0: ("weld", "Stop"), 2600.0: ("weld", "Start"), 5000.0: ("pack", "Stop")}
    commands |= {5900.0: ("pack", "Start"), 7000.0: ("cut", "Stop"), 7600.0: ("cut", "Start")}
    while env.peek() <= 3 * 3600:
        if commands and env.peek() > min(commands):  # an operator's call between two engine steps
            runtime.command(*commands.pop(min(commands)))
            last = held()
        env.step()
        now = env.now
        if now > last_t:
            area = [a + n * (now - last_t) for a, n in zip(area, last, strict=True)]
            last_t = now
        last = held()
        if now % 10 == 0:  # a refresh instant: the integral up to it is complete
            expected[now] = list(area)
            engine[now] = model.wip_area + model.wip * (now - model.wip_since)

    def value_at(timeline: Timeline, t: float) -> float:
        return [v for time, v in timeline.entries if time <= t][-1]

    assert len(expected) > 1000 and not commands
    for t, integrals in expected.items():
        published = [value_at(s.values["OccupancySeconds"], t) for s in runtime.stations]
        assert published == pytest.approx(integrals, rel=1e-12, abs=1e-9), t
        assert sum(published) == pytest.approx(engine[t], rel=1e-12), t
    # every station held parts, and the published counter only grew
    assert all(published)
    for station in runtime.stations:
        values = [v for _, v in station.values["OccupancySeconds"].entries]
        assert values == sorted(values)


CALENDAR_WASH = {
    "name": "wash",
    "cycle_time": 12,
    "buffer": 0,
    "failures": {"mtbf": 300, "mttr": 30, "basis": "calendar"},
}


def engine_view(runtime: LineRuntime) -> dict[str, tuple[int, list[tuple[str, float, str | None]], int]]:
    """Per station, what its buffer and machines hold now, read from the engine's own objects: the
    parts in the buffer, per machine (state, seconds since it entered it, product of its part),
    and the good parts it has finished.
    A machine stopped by an operator is empty (starved) from that instant, as in a state file."""
    now = runtime.env.now
    view = {}
    for station, buffer in zip(runtime.stations, runtime.model.buffers, strict=True):
        machines = []
        for machine in station.machines:
            if machine.state == STOPPED:
                machines.append(("starved", 0.0, None))
                continue
            product = machine.part[0] if machine.part is not None and machine.state != STARVED else None
            machines.append((STATE_NAMES[machine.state], now - machine.state_since, product))
        good = sum(machine.processed - machine.scrapped for machine in station.machines)
        view[station.name] = (len(buffer.items) if buffer is not None else 0, machines, good)
    return view


@pytest.mark.parametrize(
    "release",
    ["saturated", {"interarrival": {"dist": "exponential", "mean": 19}}, {"conwip": 6}, "demonstrator"],
    ids=["saturated", "interarrival", "conwip", "demonstrator"],
)
def test_the_plc_variables_hold_the_engine_state_at_any_instant(release: object) -> None:
    """What the PLCs publish on every change (State/MachineNState, BufferLevel, Product,
    PartsStarted), read back at any instant from the truth file (`truth_state`), is what the
    engine holds then: the parts in each buffer, each machine's state, the time since it
    entered it or began its part (a new part restarts a `working` machine's cycle), its product.

    A machine broken down on calendar time that takes a part while down shows it (Product) only
    once repaired, when its state changes: a down machine's product is left out.
    """
    if release == "demonstrator":
        line = load_line(ROOT / "simulations/lines/demonstrator.yaml")
    else:
        data = {**FAST_LINE, "release": release}
        data["stations"] = [{**s, "buffer": 3} if i == 0 else s for i, s in enumerate(FAST_LINE["stations"])]
        data["stations"].append(CALENDAR_WASH)
        line = line_from_dict(data)
    config = HardwareConfig.model_validate({"speed": 1, "mqtt": {"enabled": False}, "opcua": {"signals": []}})
    runtime = LineRuntime(line, config, seed=4)
    instants = np.sort(np.random.default_rng(4).uniform(30, 4 * 3600, 250))
    commands = {3000.0: ("weld", "Stop"), 3400.0: ("weld", "Start")} if release != "demonstrator" else {}
    views = []
    for t in instants:
        while commands and min(commands) < t:  # an operator's call between two instants
            at = min(commands)
            runtime.env.run(until=at)
            runtime.command(*commands.pop(at))
        runtime.env.run(until=t)
        views.append(engine_view(runtime))
    record = truth_record(runtime, ScaledClock(runtime.env, 1.0))
    seen = {"buffered": 0, "working": 0, "down": 0, "restarted": 0}
    for t, view in zip(instants, views, strict=True):
        shown = truth_state(record, float(t))
        for name, (buffer, machines, good) in view.items():
            got = shown.stations[name]
            assert got.buffer == buffer, (t, name)
            assert got.machines is not None
            for machine, (state, elapsed, product) in zip(got.machines, machines, strict=True):
                assert machine.state == state, (t, name)
                assert machine.elapsed_s == pytest.approx(elapsed, abs=1e-9), (t, name)
                if state != "down":
                    assert machine.product == product, (t, name)
                seen["working"] += state == "working"
                seen["down"] += state == "down"
            assert got.produced == good, (t, name)
            seen["buffered"] += buffer > 0
    # the comparison saw parts waiting, busy and broken machines, and working machines whose
    # state had not changed since an earlier part (their time comes from PartsStarted)
    for station in record["stations"].values():
        values = station["values"]
        started = [
            e["t"] for name, entries in values.items() if name.endswith("PartsStarted") for e in entries
        ]
        changes = {e["t"] for name, entries in values.items() if name.endswith("State") for e in entries}
        seen["restarted"] += len(set(started) - changes - {e["t"] for e in station["states"]})
    assert min(seen.values()) > 10, seen


def test_hardware_passwords_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text("opcua:\n  security:\n    users: {operator: '${PLC_OPERATOR_PASSWORD}'}\n")
    monkeypatch.setenv("PLC_OPERATOR_PASSWORD", "s3cr3t-from-env")
    assert load_hardware(path).opcua.security.users == {"operator": "s3cr3t-from-env"}
    monkeypatch.delenv("PLC_OPERATOR_PASSWORD")
    with pytest.raises(HardwareError) as error:
        load_hardware(path)
    assert str(error.value) == (
        f"{path}: opcua.security.users.operator: environment variable PLC_OPERATOR_PASSWORD is not set"
    )

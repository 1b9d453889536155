"""Every shipped line, chain or network, keeps its parts; a chain line runs as it did before networks.

Conservation: per product, the parts released equal those out, scrapped and in the line
(`LineModel.conservation()`, which finds the parts in the buffers, return queues, transports
and machines rather than deriving them from the counters), at instants through a shift.

Chains unchanged: `fabbrica twin run --json` prints, apart from the wall time (and, for a line
`engine: auto` now runs on the compiled event engine, its name and count of events), the very
bytes it printed at 05de1af, the commit before the network work (tests/twin/records/chain_kpis_05de1af.json,
written by tests/twin/records/make_chain_kpis.py in a checkout of that commit), once the keys
added since (`ADDED`, each with the one value a recorded line can give it) are taken out.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from twin.engine import LineModel
from twin.line import line_from_dict, load_line

LINES = sorted((ROOT / "simulations" / "lines").glob("*.yaml"))
RECORD = json.loads((Path(__file__).parent / "records" / "chain_kpis_05de1af.json").read_text())
WALL = re.compile(r'"wall_s": [-+.e0-9]+')
EVENTS = re.compile(r'"events": [0-9]+')
# keys added to the record since, with the value every recorded line has (no repair crew: nothing waits)
ADDED = re.compile(
    r'"(waiting_repair|energy_kwh|energy_per_good_part_kwh|off|maintenance|planned_stop'
    r'|energy_per_planned_hour_kwh)": 0\.0, |"planned_share": 1\.0, |"throughput_per_planned_hour": [^,]+, '
    r'|"services": 0, |"engine_fallback": (null|"[^"]*"), '
)


def test_both_kinds_of_line_are_shipped() -> None:
    kinds = {load_line(path).is_network for path in LINES}
    assert kinds == {False, True}


@pytest.mark.parametrize("path", LINES, ids=lambda p: p.stem)
def test_every_part_released_is_out_scrapped_or_in_the_line(path: Path) -> None:
    line = load_line(path)
    model = LineModel(line, line.seed)
    # instants through the shift that fall on no round number (mid-move, mid-repair, mid-transport)
    for until in [617.3 * k for k in range(1, 47)]:
        model.env.run(until=until)
        for product, count in model.conservation().items():
            balance = count["out"] + count["scrapped"] + count["wip"]
            assert count["released"] == balance, f"{path.name} at t={until:g}s, {product}: {count}"
    final = model.conservation()
    assert set(final) == set(line.product_mix)
    assert all(count["released"] > count["wip"] > 0 and count["out"] > 0 for count in final.values()), final
    assert model.wip == len(model.parts_in_line())  # an assembled part is one part of WIP


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each recorded case's command line run now, all in one interpreter (tests/fabbrica_driver.py
    runs each as `python -m fabbrica` would, and saves importing the command five times)."""
    folder = tmp_path_factory.mktemp("chains")
    commands = []
    for case in RECORD["cases"]:
        line = case["line"]
        path = ROOT / line if isinstance(line, str) else folder / "tandem.yaml"
        if isinstance(line, dict):
            path.write_text(yaml.safe_dump(line, sort_keys=False))
        commands.append({"args": ["twin", "run", str(path), "--json", *case["args"]], "cwd": str(folder)})
    results = folder / "results.json"
    driver = [sys.executable, str(ROOT / "tests" / "fabbrica_driver.py"), str(results)]
    done = subprocess.run(driver, input=json.dumps(commands), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and not done.stderr, done.stderr[-3000:]
    answers = json.loads(results.read_text())
    return {
        case["name"]: subprocess.CompletedProcess(command["args"], a["returncode"], a["stdout"], a["stderr"])
        for case, command, a in zip(RECORD["cases"], commands, answers, strict=True)
    }


@pytest.mark.parametrize("case", RECORD["cases"], ids=lambda case: case["name"])
def test_a_chain_line_prints_what_it_printed_before_networks(
    case: dict[str, Any], printed: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = printed[case["name"]]
    assert done.returncode == 0, done.stderr[-2000:]
    now, then = done.stdout, case["stdout"]
    if '"engine": "event"' in now:  # auto runs the demonstrator on the compiled event engine now: the
        # very bytes the SimPy engine printed, but for the engine's name and its count of events
        now = EVENTS.sub('"events": N', now.replace('"engine": "event"', '"engine": "simpy"'))
        then = EVENTS.sub('"events": N', then)
    assert ADDED.sub("", WALL.sub("WALL", now)) == WALL.sub("WALL", then)
    assert len(ADDED.findall(done.stdout)) == 7 * case["stdout"].count('"down": ') + 6
    record = json.loads(done.stdout)
    assert record["throughput_per_planned_hour"] == record["throughput_per_hour"]


def test_the_recorded_lines_are_chains() -> None:
    for case in RECORD["cases"]:
        line = case["line"]
        assert not (load_line(ROOT / line) if isinstance(line, str) else line_from_dict(line)).is_network


def test_the_drawing_of_the_assembly_line_is_current() -> None:
    """docs/images/assembly-line.svg is what `python -m twin.drawing` draws from the shipped file."""
    from twin.drawing import render

    drawing = render(load_line(ROOT / "simulations" / "lines" / "assembly.yaml"))
    committed = (ROOT / "docs" / "images" / "assembly-line.svg").read_text(encoding="utf-8")
    assert committed == drawing, (
        "run: python -m twin.drawing simulations/lines/assembly.yaml docs/images/assembly-line.svg"
    )
    for name in ("mill", "press", "assembly", "rework 5%", "route of B", "transport 2 × 75 s", "exit"):
        assert f">{name}<" in drawing

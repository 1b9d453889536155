"""Every `fabbrica` command that reads a file answers a bad one with one line and exit code 2.

A bad file is missing, a folder, not UTF-8, not YAML, not a mapping, holds a key nobody
knows, names an unset `${VAR}`, or is a file of another kind (a sink-only file where a whole
connector config is needed, a text file where the historian should be). The answer is
`error: FILE: field: message` on stderr, and never a traceback.

A few cases (SUBPROCESS: one per command, each a different kind of bad file) run as
`python -m fabbrica` in a fresh interpreter, as a user would; the others through
tests/fabbrica_driver.py, which calls the same `fabbrica.cli.main` for each case in one
interpreter, with its own argv, folder, environment and file descriptors 1 and 2, and reports a
case that leaves a thread running (a process would hang on it). Most of a run is Python
importing the command: the driver imports it once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DEMONSTRATOR, ROOT

Make = Callable[[Path], Path]
UNSET = "FABBRICA_TEST_SURELY_UNSET"


def _write(name: str, content: str | bytes) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return make


def _folder(folder: Path) -> Path:
    path = folder / "a-folder.yaml"
    path.mkdir()
    return path


# kinds of bad file every reader must refuse in one line
COMMON: dict[str, Make] = {
    "missing": lambda folder: folder / "missing.yaml",
    "folder": _folder,
    "not-utf8": _write("latin1.yaml", b"name: caf\xe9\n"),
    "not-yaml": _write("broken.yaml", "name: [unclosed\n  - x: {\n"),
    "not-a-mapping": _write("list.yaml", "- a\n- b\n"),
    "unknown-key": _write("unknown.yaml", "surely_not_a_field: 1\n"),
}
SINK_BAD: dict[str, Make] = {
    **COMMON,
    "no-sink": _write("no-sink.yaml", "name: x\nmqtt: []\n"),
    "sink-unknown-key": _write(
        "sink-key.yaml", "sink: {type: influxdb1, url: http://x:8086, database: p, nope: 1}\n"
    ),
    "sink-bad-type": _write("sink-type.yaml", "sink: {type: influxdb9, url: http://x:8086}\n"),
    "unset-env": _write(
        "sink-env.yaml", f"sink: {{type: influxdb2, url: http://x:8086, bucket: b, token: '${{{UNSET}}}'}}\n"
    ),
}
CONNECT_BAD: dict[str, Make] = {
    **COMMON,
    "sink-only": _write("sink-only.yaml", "sink: {type: embedded, path: h.duckdb}\n"),
    "unset-env": _write(
        "connect-env.yaml",
        yaml.safe_dump(
            {
                "mqtt": [
                    {"url": "mqtt://127.0.0.1:1", "username": "u", "password": f"${{{UNSET}}}", "topics": []}
                ]
            }
        ),
    ),
}
HARDWARE_BAD: dict[str, Make] = {
    **COMMON,
    "unset-env": _write("hardware-env.yaml", f"mqtt: {{url: 'mqtt://u:${{{UNSET}}}@127.0.0.1:1'}}\n"),
}
SOURCE_BAD: dict[str, Make] = {
    **SINK_BAD,
    "text-historian": _write("historian.duckdb", "this is no database\n"),
    "historian-missing": _write("sink-gone.yaml", "sink: {type: embedded, path: gone.duckdb}\n"),
}
ASSEMBLY = ROOT / "simulations" / "lines" / "assembly.yaml"


def _network(name: str, station: str, key: str, value: Any) -> Make:
    """The shipped assembly line with one bad value of a network key (`station` None: line level)."""

    def make(folder: Path) -> Path:
        data = yaml.safe_load(ASSEMBLY.read_text())
        target = data if station is None else next(s for s in data["stations"] if s["name"] == station)
        target[key] = value
        path = folder / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return make


# the keys of lines as networks (docs/networks.md): (bad file, the field its one line names)
NETWORK_BAD: dict[str, tuple[Make, str]] = {
    "inputs-unknown": (
        _network("inputs.yaml", "assembly", "inputs", ["wash", "debur"]),
        "stations[5].inputs[1]",
    ),
    "routes-unknown": (
        _network("routes.yaml", None, "routes", {"A": ["mill", "lathe", "wsh"]}),
        "routes.A[2]",
    ),
    "rework-to-unknown": (
        _network("rework.yaml", "test", "rework", {"probability": 0.1, "to": "scrw"}),
        "stations[7].rework.to",
    ),
    "rework-into-assembly": (
        _network("rework-assembly.yaml", "test", "rework", {"probability": 0.1, "to": "assembly"}),
        "stations[7].rework.to",
    ),
    "route-outside-branches": (
        _network("route-assembly.yaml", None, "routes", {"A": ["mill", "screw", "assembly", "test"]}),
        "routes.A[2]",
    ),
    "product-on-non-head": (_network("product.yaml", "deburr", "product", "cover"), "stations[4].product"),
    "conwip-on-branch": (_network("conwip.yaml", "press", "release", {"conwip": 3}), "stations[3].release"),
    "cycle": (_network("cycle.yaml", "test", "inputs", ["pack"]), "stations[7].inputs"),
    "fed-twice": (_network("fed-twice.yaml", "screw", "inputs", ["wash"]), "stations[6].inputs"),
}
NETWORK_FIELDS = {f"twin run LINE-{kind}": field for kind, (_, field) in NETWORK_BAD.items()}
JSON_BAD: dict[str, Make] = {
    "missing": lambda folder: folder / "experiment.json",
    "not-json": _write("experiment.json", "{not json"),
    "not-experiment": _write("other.json", '{"a": 1}'),
}


def _experiment(folder: Path) -> Path:
    path = folder / "study.yaml"
    spec = {
        "name": "ok",
        "line": str(DEMONSTRATOR),
        "design": {"scenarios": [{"id": "as-built"}]},
        "replications": 2,
        "horizon": "1h",
        "kpis": ["throughput_per_hour"],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def _sink(folder: Path) -> Path:
    path = folder / "good-sink.yaml"
    path.write_text("sink: {type: embedded, path: results.duckdb}\n")
    return path


LINE = str(DEMONSTRATOR)
# the files' own readers see every kind of bad file; a command that only passes a file on to a
# reader already seen here gets the kinds that reach it first
SHORT = {kind: COMMON[kind] for kind in ("missing", "not-yaml", "unknown-key")}
SINK_SHORT = {
    kind: SINK_BAD[kind] for kind in ("missing", "not-yaml", "no-sink", "sink-unknown-key", "unset-env")
}
# (name, arguments with {F} where the bad file goes, the bad files to try)
COMMANDS: list[tuple[str, list[str], dict[str, Make]]] = [
    (
        "twin run LINE",
        ["twin", "run", "{F}"],
        COMMON | {kind: make for kind, (make, _) in NETWORK_BAD.items()},
    ),
    ("twin run --sink-config", ["twin", "run", LINE, "--sink-config", "{F}"], SINK_BAD),
    (
        "twin calibrate --line",
        ["twin", "calibrate", "--line", "{F}", "--source", "{SINK}", "--out", "{O}"],
        SHORT,
    ),
    (
        "twin calibrate --source",
        ["twin", "calibrate", "--line", LINE, "--source", "{F}", "--out", "{O}"],
        SOURCE_BAD,
    ),
    ("twin validate LINE", ["twin", "validate", "{F}", "--source", "{SINK}"], SHORT),
    (
        "twin validate --source",
        ["twin", "validate", LINE, "--source", "{F}"],
        SINK_SHORT | {k: SOURCE_BAD[k] for k in ("text-historian", "historian-missing")},
    ),
    (
        "twin validate --sink-config",
        ["twin", "validate", LINE, "--source", "{SINK}", "--sink-config", "{F}"],
        SINK_SHORT,
    ),
    ("experiment run", ["experiment", "run", "{F}", "--out", "{O}"], SHORT),
    (
        "experiment run --sink-config",
        ["experiment", "run", "{EXP}", "--out", "{O}", "--sink-config", "{F}"],
        SINK_SHORT,
    ),
    ("experiment validate", ["experiment", "validate", "{F}"], COMMON),
    ("connect", ["connect", "{F}", "--check"], CONNECT_BAD),
    (
        "line serve LINE",
        ["line", "serve", "{F}", "--opcua", "none", "--mqtt", "none", "--duration", "1s"],
        SHORT,
    ),
    (
        "line serve --hardware",
        ["line", "serve", LINE, "--hardware", "{F}", "--opcua", "none", "--mqtt", "none", "--duration", "1s"],
        HARDWARE_BAD,
    ),
    ("demo --line", ["demo", "--line", "{F}", "--out", "{O}", "--hours", "0.1", "--speed", "1200"], SHORT),
    (
        "demo --sink-config",
        ["demo", "--sink-config", "{F}", "--out", "{O}", "--hours", "0.1", "--speed", "1200"],
        SINK_SHORT,
    ),
    ("grafana annotate", ["grafana", "annotate", "{F}", "--url", "http://127.0.0.1:9"], JSON_BAD),
]
CASES = {f"{name}-{kind}": (args, make) for name, args, bad in COMMANDS for kind, make in bad.items()}


# run as true subprocesses: one case per command, each a different kind of bad file
SUBPROCESS = (
    "twin run LINE-missing",
    "twin calibrate --source-text-historian",
    "experiment run --sink-config-unset-env",
    "connect-sink-only",
    "line serve --hardware-not-utf8",
    "demo --sink-config-no-sink",
    "grafana annotate-not-json",
)
DRIVER = ROOT / "tests" / "fabbrica_driver.py"


@dataclass
class Answer:
    """How one case ended: by a fresh `python -m fabbrica`, or by the driver (with its leftover threads)."""

    returncode: int
    stdout: str
    stderr: str
    threads: list[str] = field(default_factory=list)
    how: str = "subprocess"


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Answer]]:
    """Every case run once: a few as their own process, the rest in one driver process meanwhile."""
    environ = {key: value for key, value in os.environ.items() if key != UNSET}

    def prepare(case: str) -> tuple[Path, Path, list[str]]:
        args, make = CASES[case]
        folder = tmp_path_factory.mktemp("bad")
        bad = make(folder)
        values = {"{F}": str(bad), "{O}": str(folder / "out")}
        if "{SINK}" in args:
            values["{SINK}"] = str(_sink(folder))
        if "{EXP}" in args:
            values["{EXP}"] = str(_experiment(folder))
        return folder, bad, [values.get(arg, arg) for arg in args]

    prepared = {case: prepare(case) for case in CASES}

    def alone(case: str) -> Answer:
        folder, _, args = prepared[case]
        command = [sys.executable, "-m", "fabbrica", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=folder, env=environ)
        return Answer(done.returncode, done.stdout, done.stderr)

    def driven(cases: list[str]) -> list[Answer]:
        results = tmp_path_factory.mktemp("driver") / "results.json"
        request = json.dumps([{"args": prepared[case][2], "cwd": str(prepared[case][0])} for case in cases])
        done = subprocess.run(
            [sys.executable, str(DRIVER), str(results)],
            input=request, capture_output=True, text=True, timeout=600, env=environ,
        )  # fmt: skip
        assert done.returncode == 0 and not done.stdout and not done.stderr, done.stderr[-3000:]
        return [Answer(**answer, how="driver") for answer in json.loads(results.read_text())]

    rest = [case for case in CASES if case not in SUBPROCESS]
    with ThreadPoolExecutor(max_workers=3) as pool:
        in_driver = pool.submit(driven, rest)
        separate = dict(zip(SUBPROCESS, pool.map(alone, SUBPROCESS), strict=True))
        found = {**separate, **dict(zip(rest, in_driver.result(), strict=True))}
    return {case: (prepared[case][1], found[case]) for case in CASES}


def test_the_subprocess_cases_are_cases() -> None:
    assert set(SUBPROCESS) <= set(CASES)
    commands = {args[0] for args, _ in CASES.values()}
    assert {CASES[case][0][0] for case in SUBPROCESS} == commands  # every command at least once


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first case waits for all of them
@pytest.mark.parametrize("case", CASES)
def test_a_bad_file_is_one_line_and_exit_2(case: str, answers: dict[str, tuple[Path, Answer]]) -> None:
    bad, done = answers[case]
    lines = done.stderr.strip().splitlines()
    assert done.threads == [], (done.how, done.threads)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and bad.name in lines[0], lines[0]
    if case in NETWORK_FIELDS:
        assert f"{bad.name}: {NETWORK_FIELDS[case]}: " in lines[0], lines[0]

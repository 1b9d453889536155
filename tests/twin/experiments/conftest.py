"""Fixtures for experiment tests: small line and experiment files, and a real Dask cluster on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, run_fabbrica

# `fabbrica` run in a fresh interpreter from the project root, as a user would
fabbrica = partial(run_fabbrica, timeout=120, cwd=ROOT)

TANDEM = {
    "name": "tandem",
    "release": "saturated",
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 50}},
        {"name": "weld", "cycle_time": {"dist": "exponential", "mean": 60}, "buffer": 2},
        {"name": "pack", "cycle_time": {"dist": "exponential", "mean": 45}, "buffer": 1},
    ],
}

WriteExperiment = Callable[..., Path]


@pytest.fixture
def write_experiment(tmp_path: Path) -> WriteExperiment:
    """Write a line (default: a three-station exponential tandem) and an experiment file; return its path."""

    def write(experiment: dict[str, Any], line: dict[str, Any] | None = None, name: str = "exp.yaml") -> Path:
        (tmp_path / "lines").mkdir(exist_ok=True)
        (tmp_path / "lines" / "tandem.yaml").write_text(yaml.safe_dump(line or TANDEM, sort_keys=False))
        data = {"line": "lines/tandem.yaml", **experiment}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Dask scheduler and two single-threaded worker processes on 127.0.0.1; yields its address."""
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    scheduler_log = (folder / "scheduler.log").open("wb")
    workers_log = (folder / "workers.log").open("wb")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(file)],
        stdout=scheduler_log, stderr=subprocess.STDOUT, env=env, cwd=folder,
    )  # fmt: skip
    workers: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Dask scheduler did not start: {(folder / 'scheduler.log').read_text()}")
            time.sleep(0.2)
        time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        workers = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(folder)],
            stdout=workers_log, stderr=subprocess.STDOUT, env=env, cwd=folder,
        )  # fmt: skip
        _wait_for_workers(address, 2, deadline)
        yield address
    finally:
        if workers is not None:
            _stop(workers)
        _stop(scheduler)
        scheduler_log.close()
        workers_log.close()


def _wait_for_workers(address: str, count: int, deadline: float) -> None:
    probe = (
        "import sys, time\n"
        "from distributed import Client\n"
        "with Client(sys.argv[1], timeout=30) as client:\n"
        "    client.wait_for_workers(int(sys.argv[2]), timeout=max(1, float(sys.argv[3])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, address, str(count), str(deadline - time.monotonic())],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"Dask workers did not come up: {done.stderr[-2000:]}")

"""A real Dask cluster on loopback: one scheduler and two single-threaded worker processes.

The experiments and the optimisation run on `--scheduler ADDR` exactly as a user's cluster
would run them, so their tests start the cluster the same way, from the `dask` command, and
talk to it over TCP. `tests/conftest.py` holds the session fixture `dask_scheduler` that
starts one cluster for the whole run, only when a test asks for it.

    with dask_cluster(folder) as address:   # tcp://127.0.0.1:PORT
        ...

The scheduler picks its own port and writes it to `folder/scheduler.json`; logs go to
`folder/scheduler.log` and `folder/worker.log`. Dask is a dependency of fabbrica: when it
is missing, the tests that need it fail under CI=true and skip elsewhere (`tests.ci.missing`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.ci import missing

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
START_TIMEOUT_S = 60


@contextlib.contextmanager
def dask_cluster(folder: Path) -> Iterator[str]:
    """Start a scheduler and `WORKERS` single-threaded workers on 127.0.0.1; yield the scheduler's address."""
    if importlib.util.find_spec("distributed") is None:
        missing("dask.distributed (pip install 'dask[distributed]')")
    deadline = time.monotonic() + START_TIMEOUT_S
    with contextlib.ExitStack() as stack:
        scheduler = _start(
            folder, "scheduler", ["--port", "0", "--scheduler-file", str(folder / "scheduler.json")]
        )
        stack.callback(_stop, scheduler)
        address = _address(folder, scheduler, deadline)
        workers = _start(
            folder,
            "worker",
            [address, "--nworkers", str(WORKERS), "--nthreads", "1", "--local-directory", str(folder)],
        )
        stack.callback(_stop, workers)
        _wait_for_workers(address, WORKERS, deadline)
        yield address


def _start(folder: Path, role: str, args: list[str]) -> subprocess.Popen[bytes]:
    """`dask scheduler|worker` on loopback without a dashboard, its output into folder/ROLE.log."""
    with (folder / f"{role}.log").open("ab") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "dask", role, "--host", "127.0.0.1", "--no-dashboard", *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=folder,
        )  # fmt: skip


def _address(folder: Path, scheduler: subprocess.Popen[bytes], deadline: float) -> str:
    """The address the scheduler wrote into its scheduler file, once it is there."""
    file = folder / "scheduler.json"
    while not file.exists():
        if scheduler.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Dask scheduler did not start: {(folder / 'scheduler.log').read_text()}")
        time.sleep(0.2)
    time.sleep(0.2)  # written, perhaps not yet whole
    return str(json.loads(file.read_text())["address"])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


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

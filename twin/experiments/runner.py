"""Where an experiment's runs execute: in this process, in local worker processes, or on a Dask cluster.

A run is a `RunTask` (a validated line, a seed, the scenario and replication it
belongs to) and its result is a flat record of KPIs. Tasks carry everything
they need and `run_task` is a pure function of its task, so the executor only
decides where and when a run happens, never what it returns:

- `InProcess`: one run after the other in this process (`workers=1`);
- `LocalProcesses`: a pool of worker processes on this machine (`workers=N`);
  workers ignore Ctrl-C, the coordinating process terminates them;
- `DaskCluster`: the tasks go to a Dask distributed scheduler (`tcp://HOST:PORT`),
  whose workers must be able to import `twin`.

Every executor yields results as they finish, in no particular order.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from foundation.errors import InputError
from twin.kpi_catalogue import names
from twin.line import ConwipRelease, Line
from twin.run import run_line


@dataclass(frozen=True)
class RunTask:
    """One simulation run of an experiment (`pilot`: a warm-up pilot run, started empty, no warm-up:
    its record holds the lead and exit times of every good part instead of KPIs)."""

    scenario: str
    replication: int
    seed: int
    line: Line
    warmup: float | None = None
    pilot: bool = False


def run_task(task: RunTask) -> dict[str, Any]:
    """Simulate one task and return its flat record (no wall time: records depend on the task only).

    The line's `engine` field picks the engine, as for `fabbrica twin run`: with `auto` the
    flow engine runs every line it can (same KPIs, far sooner), the SimPy engine the rest.
    """
    if task.pilot:
        result = run_line(task.line, seed=task.seed, warmup=0.0)
        return {
            "scenario": task.scenario,
            "replication": task.replication,
            "pilot": True,
            "lead_times": result.lead_times,
            "exit_times": result.exit_times,
        }
    kpis = run_line(task.line, seed=task.seed, warmup=task.warmup).kpis
    record: dict[str, Any] = {
        "scenario": task.scenario,
        "replication": task.replication,
        "seed": task.seed,
        "horizon_s": kpis["horizon_s"],
        "warmup_s": kpis["warmup_s"],
        **{name: kpis[name] for name in names("line")},
        "engine": kpis["engine"],
        "events": kpis["events"],
    }
    for station, values in kpis["stations"].items():
        for metric, value in values.items():
            record[f"stations.{station}.{metric}"] = value
    return record


def warm_up() -> None:
    """Run a tiny line once on each engine, so that whatever they load on first use is loaded."""
    line = Line.model_validate(
        {"stations": [{"name": "a", "cycle_time": 10}, {"name": "b", "cycle_time": 12, "buffer": 1}]}
    )
    for engine in ("simpy", "auto"):
        run_line(line, engine=engine, seed=0, horizon=600.0, warmup=0.0)
    parallel = line.model_copy(update={"release": ConwipRelease(conwip=2)})
    run_line(parallel, engine="event", seed=0, horizon=600.0, warmup=0.0)


class Executor(Protocol):
    """Runs tasks somewhere and yields their records as they finish."""

    description: dict[str, Any]

    def map_unordered(self, tasks: Sequence[RunTask]) -> Iterator[dict[str, Any]]: ...

    def close(self, cancel: bool = False) -> None: ...


class InProcess:
    """Runs every task here, one after the other."""

    def __init__(self) -> None:
        self.description: dict[str, Any] = {"executor": "in-process", "workers": 1}

    def map_unordered(self, tasks: Sequence[RunTask]) -> Iterator[dict[str, Any]]:
        for task in tasks:
            yield run_task(task)

    def close(self, cancel: bool = False) -> None:
        pass


@functools.cache
def _warm_here() -> None:
    warm_up()


def _ignore_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalProcesses:
    """A pool of `workers` processes on this machine.

    The engines load some parts on first use (numba kernels): a tiny line is run once
    (`warm_up`) where the workers are forked from, so each worker starts ready. A
    single-threaded process forks its workers directly (nothing to re-import, and
    scripts need no `if __name__ == "__main__"` guard); a multi-threaded one (a live
    progress bar, a notebook) forks them from a fork server that imported the main
    module and `twin.experiments.warm`, since forking a process with threads is unsafe.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        if threading.active_count() == 1:
            _warm_here()
            context = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["__main__", "twin.experiments.warm"])
        self.description = {"executor": "local-processes", "workers": workers}
        self._pool = context.Pool(workers, initializer=_ignore_interrupt)

    def map_unordered(self, tasks: Sequence[RunTask]) -> Iterator[dict[str, Any]]:
        # a few tasks per message when there are many (short flow-engine runs), one otherwise
        chunk = max(1, min(8, len(tasks) // (8 * self.workers)))
        yield from self._pool.imap_unordered(run_task, tasks, chunksize=chunk)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._pool.terminate()
        else:
            self._pool.close()
        self._pool.join()


class DaskCluster:
    """The tasks of an experiment on a Dask distributed cluster reached at `address`."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        from distributed import Client

        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {address}: cannot reach the Dask scheduler ({exc})") from None
        workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        self.description = {
            "executor": "dask",
            "scheduler": address,
            "workers": len(workers),
            "threads": sum(w.get("nthreads", 0) for w in workers.values()),
        }
        self._token = uuid.uuid4().hex[:12]
        self._futures: list[Any] = []

    def map_unordered(self, tasks: Sequence[RunTask]) -> Iterator[dict[str, Any]]:
        from distributed import as_completed

        keys = [
            f"fabbrica-{self._token}-{'pilot' if t.pilot else 'run'}-{t.scenario}-{t.replication}"
            for t in tasks
        ]
        futures = self._client.map(run_task, list(tasks), key=keys)
        self._futures = futures
        for future in as_completed(futures, loop=self._client.loop):
            record = future.result()
            future.release()
            yield record
        self._futures = []

    def close(self, cancel: bool = False) -> None:
        if cancel and self._futures:
            self._client.cancel(self._futures)
        self._client.close()


def make_executor(
    workers: int | None = None, scheduler: str | None = None, tasks: int | None = None
) -> Executor:
    """The executor for `--workers`/`--scheduler`: Dask when a scheduler is given, else local."""
    if scheduler:
        return DaskCluster(scheduler)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count < 1:
        raise InputError(f"--workers: must be >= 1, got {count}")
    if tasks is not None:
        count = min(count, max(tasks, 1))
    return InProcess() if count == 1 else LocalProcesses(count)

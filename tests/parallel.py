"""Independent replications of the statistical checks, shared out over the machine's cores.

The default suite runs one test at a time, so while a check against exact theory simulates
its replications the other cores are idle. `replications(function, arguments)` runs
`function(*arguments[i])` for every i in worker processes (one per core, at most two: the CI
machines have two) and returns the results in the order of `arguments`, so a check gives the
same numbers whether it ran in parallel or not. The function must be importable at module
level (it is sent by name). The workers are forked from a fork server that has imported the
twin, started once per test session.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Result = TypeVar("Result")

# under pytest-xdist (scripts/test.sh) the other core runs the line's tests: one process here
WORKERS = 1 if "PYTEST_XDIST_WORKER" in os.environ else min(2, os.cpu_count() or 1)


@functools.cache
def _executor() -> ProcessPoolExecutor | None:
    if WORKERS < 2:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["twin.engine", "twin.flow", "twin.forecast"])
    executor = ProcessPoolExecutor(max_workers=WORKERS, mp_context=context)
    atexit.register(executor.shutdown, cancel_futures=True)
    return executor


def replications(function: Callable[..., Result], arguments: Iterable[Sequence[Any]]) -> list[Result]:
    """`[function(*args) for args in arguments]`, computed on the machine's cores, in order."""
    calls = [tuple(args) for args in arguments]
    executor = _executor()
    if executor is None or len(calls) < 2:
        return [function(*args) for args in calls]
    chunk = max(1, len(calls) // (4 * WORKERS))
    return list(executor.map(function, *zip(*calls, strict=True), chunksize=chunk))

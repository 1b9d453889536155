"""The live twin's forecast process: what runs in the process `twinloop.live` starts per forecast.

The live service forks each forecast from a fork server (`multiprocessing`'s forkserver), which
imports this module once when the service starts. Importing it warms the twin: a two-replication
forecast on each engine from a state with elapsed times, so numba's kernels (the bottleneck
sweep, the flow engine) are loaded and scipy's distributions imported before the fork, and a
forecast process starts in milliseconds instead of spending seconds on them every tick.
Nothing else imports this module: the service names it to the fork server and calls `run`
through `twinloop.live`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from twin.forecast import forecast
from twin.line import Line, line_from_dict
from twin.state import LineState, state_from_dict

log = logging.getLogger(__name__)

_WARM_LINE = {
    "name": "warm-up",
    "release": "saturated",
    "stations": [
        {
            "name": "a",
            "cycle_time": {"dist": "exponential", "mean": 10},
            "failures": {"mtbf": 100, "mttr": 5},
        },
        {"name": "b", "cycle_time": {"dist": "lognormal", "mean": 9, "cv": 0.3}, "buffer": 2},
    ],
}
_WARM_STATE = {
    "format": "fabbrica-state/1",
    "stations": {"a": {"machines": [{"state": "down", "elapsed_s": 2}]},
                 "b": {"buffer": 1, "machines": [{"state": "working", "elapsed_s": 3}]}},
}  # fmt: skip


def warm() -> None:
    """Run a tiny forecast on each engine (best effort: a failure only costs time later)."""
    line = line_from_dict(_WARM_LINE, "<warm-up>")
    state = state_from_dict(_WARM_STATE, "<warm-up>")
    for engine in ("simpy", "event", "flow"):
        try:
            forecast(
                line, state, horizon=300.0, replications=2, seed=1, engine=engine, target=5, path=[150.0]
            )
        except Exception as exc:
            log.debug("warm-up of the %s engine failed: %s", engine, exc)


def run(connection: Any, line: Line, state: LineState, options: dict[str, Any]) -> None:
    """In the forecast process: run the forecast and send back ("ok", result) or ("error", text)."""
    os.setpgid(0, 0)  # its own process group: abandoning it ends the pool it may start too
    try:
        connection.send(("ok", forecast(line, state, **options)))
    except Exception as exc:
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()


warm()

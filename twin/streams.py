"""Independent random-number streams, one per station, machine and purpose.

Every stream is keyed by names, not positions: the station's name, the purpose
(cycle times, failures, repairs, set-ups, scrap, arrivals, product mix, the
residual times and products of a run started from a state, rework and transport times) and the
machine or product. Changing one station's parameters, or inserting a station,
leaves every other stream untouched: common random numbers for experiments.
No global random state is used anywhere.
"""

from __future__ import annotations

import zlib

import numpy as np

# appended only: a stream's key is its purpose's position, so older streams never change
PURPOSES = (
    "cycle",
    "ttf",
    "ttr",
    "setup",
    "scrap",
    "arrival",
    "product",
    "initial",
    "rework",
    "transport",
    "maintenance",
    "restart",
)
RELEASE_OWNER = "__release__"


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def spawn_key(owner: str, purpose: str, index: int = 0, variant: str = "") -> tuple[int, int, int, int]:
    """The key that sets a stream apart from the others of its run (numpy's SeedSequence spawn key)."""
    return (_key(owner), PURPOSES.index(purpose), index, _key(variant))


def stream(seed: int, owner: str, purpose: str, index: int = 0, variant: str = "") -> np.random.Generator:
    """The generator for `purpose` of `owner` (a station name) in the run seeded with `seed`."""
    key = spawn_key(owner, purpose, index, variant)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))

"""Settings shared by the property-based fuzz tests.

The default suite runs a few hundred examples per parser; `FUZZ_EXAMPLES=10000` runs more
(`FUZZ_EXAMPLES=10000 .venv/bin/pytest tests/test_fuzz_parsers.py
tests/test_fuzz_connectors_and_experiments.py -p no:cacheprovider`); a long run lifts the
per-test timeout.

The default suite draws the same examples on every machine: tests/conftest.py loads the
hypothesis profile "fixed" (`derandomize=True`, no database) before any test module is imported,
and every `settings(...)` here and in the tests inherits it. With FUZZ_EXAMPLES set (or
HYPOTHESIS_PROFILE=explore) the profile is "explore": new random examples each run. A case an
exploring run (or a failure anywhere) finds is pinned on its test with `@example(...)` and a
comment saying what broke, so the fixed draw covers it from then on.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG_RUN = pytest.mark.timeout(0 if EXAMPLES > 1000 else 300)


def fuzz(default: int) -> settings:
    """`default` examples for a costly property in the default suite; FUZZ_EXAMPLES when it is set."""
    return settings(FUZZ, max_examples=EXAMPLES if "FUZZ_EXAMPLES" in os.environ else default)


def few(examples: int) -> settings:
    """A fixed, small number of examples (each one runs a command, say)."""
    return settings(FUZZ, max_examples=examples)

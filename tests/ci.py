"""Whether this is the CI's run, and what a missing server, binary or browser does then.

`scripts/test.sh` (which `.ci/run` calls) exports CI=true: there the system packages have just
been installed, so a missing one is a broken machine and fails the tests that need it. On a
developer's machine the same tests skip, naming what to install. Every test reads CI here.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI is set to true (or 1), in any case and with any surrounding spaces."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing(what: str) -> NoReturn:
    """Fail under CI, skip elsewhere, because `what` (a server, a binary, a package) is not there."""
    if in_ci():
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} is not available")

"""Shared fixtures: paths of the shipped examples and a helper to write line files.

Also the hypothesis profile of every property in tests/: the default suite ("fixed") draws the
same examples on every machine and keeps no database, so it passes or fails alike everywhere;
`FUZZ_EXAMPLES=...` (or HYPOTHESIS_PROFILE=explore) draws new ones ("explore"), and a case it
finds is pinned with `@example` (tests/fuzzing.py). It is loaded here, before any test module
is imported, because a `settings(...)` takes the profile loaded when it is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
DEMONSTRATOR = ROOT / "simulations" / "lines" / "demonstrator.yaml"

settings.register_profile("fixed", settings.get_profile("default"), derandomize=True, database=None)
settings.register_profile("explore", settings.get_profile("default"), derandomize=False, print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "explore" if "FUZZ_EXAMPLES" in os.environ else "fixed"
)
settings.load_profile(HYPOTHESIS_PROFILE)


@pytest.fixture
def write_line(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a line definition to a YAML file in a temporary folder and return its path."""

    def write(data: dict[str, Any], name: str = "line.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def run_fabbrica(
    *args: str, timeout: float = 600, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `fabbrica` command in a fresh interpreter, as a user would; `env` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "fabbrica", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env={**os.environ, **env} if env is not None else None,
    )

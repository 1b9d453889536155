"""The default suite draws the same hypothesis examples on every machine; FUZZ_EXAMPLES explores.

Every property in tests/ must run under the profile tests/conftest.py loads: a `settings(...)`
created before the load, or one that sets `derandomize` itself, would draw at random again.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import settings

from .conftest import HYPOTHESIS_PROFILE, ROOT

HERE = Path(__file__).resolve().parent
PROPERTY = "tests/connectors/test_units.py::test_line_protocol_round_trip"


def properties() -> Iterator[tuple[str, Any]]:
    """Every `@given` test in tests/, by its pytest id."""
    for path in sorted(HERE.rglob("test_*.py")):
        if "@given" not in path.read_text(encoding="utf-8"):
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for name, value in vars(module).items():
            candidates = [(name, value)]
            if isinstance(value, type):
                candidates = [(f"{name}::{attr}", item) for attr, item in vars(value).items()]
            for label, test in candidates:
                if hasattr(test, "hypothesis"):
                    yield f"{path.relative_to(ROOT).as_posix()}::{label}", test


def test_every_property_runs_under_the_loaded_profile() -> None:
    found = dict(properties())
    # the properties issue 13 names; a rename here must not let one slip out of the check
    for expected in (
        "tests/twin/test_flow_engine.py::test_flow_and_simpy_agree_on_random_lines",
        "tests/twin/test_bottleneck_sweep.py::test_sweep_equals_the_plain_definition",
        "tests/test_fuzz_connectors_and_experiments.py::test_number_payloads_give_a_point_or_a_counted_rejection",
        PROPERTY,
    ):
        assert expected in found
    assert any(name.startswith("tests/test_fuzz_parsers.py::") for name in found)
    loaded = settings.default
    assert loaded is not None
    for name, test in found.items():
        used = test._hypothesis_internal_use_settings
        assert used.derandomize == loaded.derandomize, name
        if HYPOTHESIS_PROFILE == "fixed":
            assert used.derandomize and used.database is None, name


def test_fuzz_examples_selects_the_exploring_profile() -> None:
    expected = os.environ.get("HYPOTHESIS_PROFILE") or (
        "explore" if "FUZZ_EXAMPLES" in os.environ else "fixed"
    )
    assert HYPOTHESIS_PROFILE == expected == settings.get_current_profile_name()
    assert settings.get_profile("fixed").derandomize
    assert settings.get_profile("fixed").database is None
    assert not settings.get_profile("explore").derandomize


def _draws(folder: Path, hash_seed: str, **env: str) -> list[str]:
    """The examples one run of PROPERTY tries, in a fresh interpreter, as hypothesis prints them."""
    clean = {k: v for k, v in os.environ.items() if k not in ("FUZZ_EXAMPLES", "HYPOTHESIS_PROFILE")}
    folder.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / PROPERTY),
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "--hypothesis-verbosity=verbose",
        ],
        cwd=folder,  # a different directory, as on another machine; .hypothesis/ lands here
        env={**clean, "PYTHONHASHSEED": hash_seed, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tried = re.split(r"^(?:Trying example|Test case): ", done.stdout, flags=re.MULTILINE)[1:]
    assert len(tried) >= 100, done.stdout[-3000:]
    tried[-1] = re.sub(r"\d+ passed in .*", "", tried[-1])  # the timing line
    return tried


def test_two_machines_draw_the_same_examples_and_exploring_draws_others(tmp_path: Path) -> None:
    first = _draws(tmp_path / "one", "1")
    second = _draws(tmp_path / "two", "2")
    assert first == second
    exploring = _draws(tmp_path / "three", "1", FUZZ_EXAMPLES="200")
    assert exploring != first

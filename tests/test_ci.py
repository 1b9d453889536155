"""CI=true turns a missing server into a failure; every test reads CI through tests/ci.py."""

from __future__ import annotations

import re

import pytest

from .ci import in_ci, missing
from .conftest import ROOT

PACKAGES = (
    "benchmarks",
    "connectors",
    "fabbrica",
    "scripts",
    "simulations",
    "testing",
    "tests",
    "twin",
    "twinloop",
)


@pytest.mark.parametrize(("value", "expected"), [("true", True), (" TRUE\n", True), ("1", True)])
def test_ci_set(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


@pytest.mark.parametrize("value", ["", "false", "0", "no"])
def test_ci_not_set(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not in_ci()
    monkeypatch.delenv("CI")
    assert not in_ci()


def test_a_missing_server_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="influxd is required under CI=true"):
        missing("influxd")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="influxd is not available"):
        missing("influxd")


def test_only_tests_ci_reads_the_ci_variable() -> None:
    """One reading of CI: any other file that looks at it would disagree on 'True' or '1' some day."""
    readers = re.compile(r"""environ(\.get)?\s*[\[(]\s*["']CI["']|getenv\(\s*["']CI["']""")
    found = [
        path.relative_to(ROOT).as_posix()
        for folder in PACKAGES
        for path in sorted((ROOT / folder).rglob("*.py"))
        if readers.search(path.read_text(encoding="utf-8"))
    ]
    assert found == ["tests/ci.py"]


def test_the_default_suite_runs_under_ci() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "export CI=true" in script
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()

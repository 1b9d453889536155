"""The imports follow the data: line model -> twin -> records; protocols -> connectors -> points.

`twin/` knows no protocol and no database, `connectors/` know no twin, `twinloop/` joins the two
and `fabbrica/` (the command line) wires everything; `foundation/` stands under all of them. No
shipped package leans on test support (`testing/`, `tests/`, `benchmarks/`), `testing/` stands
alone, and a benchmark never imports from tests/. Every module is parsed (not imported), so an
import inside a function or under TYPE_CHECKING counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("foundation", "twin", "connectors", "simulations", "twinloop", "fabbrica")
NOT_SHIPPED = ("testing", "tests", "benchmarks")  # testing/: server helpers for tests and benchmarks

# package -> the project's packages it must never import; no shipped package imports test support
FORBIDDEN = {
    "foundation": (*SHIPPED[1:], *NOT_SHIPPED),
    "twin": ("connectors", "simulations", "twinloop", "fabbrica", *NOT_SHIPPED),
    "connectors": ("twin", "simulations", "twinloop", "fabbrica", *NOT_SHIPPED),
    "simulations": ("twinloop", "fabbrica", *NOT_SHIPPED),
    "twinloop": ("fabbrica", *NOT_SHIPPED),
    "fabbrica": NOT_SHIPPED,
    "testing": (*SHIPPED, "tests", "benchmarks"),
    "benchmarks": ("tests",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file.

    A relative import never leaves the top package it is written in, so it cannot cross a border.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(package: str, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """`path:line: imports module` for every import of a forbidden package under root/package."""
    return [
        f"{path.relative_to(root)}:{line}: imports {module}"
        for path in sorted((root / package).rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] in forbidden
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_follow_the_direction_of_the_data(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(package, FORBIDDEN[package]) == []


@pytest.mark.parametrize(
    ("package", "module", "text", "expected"),
    [
        ("twin", "twin/engine.py", "from connectors.sinks.base import Sink\n", "connectors.sinks.base"),
        ("twin", "twin/calibration/fit.py", "def f():\n    import twinloop.history\n", "twinloop.history"),
        (
            "connectors",
            "connectors/sinks/base.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from twin.line import Line\n",
            "twin.line",
        ),
        ("twinloop", "twinloop/demo.py", "from fabbrica import cli\n", "fabbrica"),
        ("foundation", "foundation/models.py", "import twin.line as line\n", "twin.line"),
        ("simulations", "simulations/hardware/plc.py", "from twinloop.results import AnySink\n", "twinloop"),
        ("benchmarks", "benchmarks/soak.py", "from tests.connectors.conftest import free_port\n", "tests"),
        ("testing", "testing/servers.py", "from tests.ci import missing\n", "tests"),
        ("fabbrica", "fabbrica/cli.py", "from testing.servers import free_port\n", "testing"),
    ],
)
def test_a_planted_import_is_found(
    tmp_path: Path, package: str, module: str, text: str, expected: str
) -> None:
    """The check can fail: one forbidden import planted in a copy of a clean tree is named."""
    planted = tmp_path / module
    planted.parent.mkdir(parents=True)
    planted.write_text("from __future__ import annotations\n\n" + text)
    found = violations(package, FORBIDDEN[package], tmp_path)
    assert len(found) == 1 and expected in found[0], found

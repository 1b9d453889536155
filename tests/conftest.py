"""Shared fixtures: paths of the shipped examples and a helper to write line files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMONSTRATOR = ROOT / "simulations" / "lines" / "demonstrator.yaml"


@pytest.fixture
def write_line(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a line definition to a YAML file in a temporary folder and return its path."""

    def write(data: dict[str, Any], name: str = "line.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write

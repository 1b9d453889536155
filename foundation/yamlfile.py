"""A YAML file holding a mapping: how every input file (line, experiment, connector, hardware) is read.

Every problem (missing, unreadable, not UTF-8, not YAML, not a mapping) becomes one line
naming the file, raised as the caller's error class.

    data = read_mapping("line.yaml", LineError, "a mapping of line fields")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: str | Path, error: Callable[[str], Exception], expected: str) -> dict[str, Any]:
    """The mapping at the top of `path`; `error(message)` is raised, one line, if there is none.

    `expected` says what the top level should be, e.g. "a mapping of line fields".
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{file}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{file}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{file}: invalid YAML{where}: {problem}") from None
    except (ValueError, RecursionError) as exc:  # a date such as 2024-13-01; nesting too deep
        raise error(f"{file}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{file}: expected {expected} at the top level")
    return data

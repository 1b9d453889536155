"""A YAML file holding a mapping: how every input file (line, experiment, connector, hardware) is read.

Every problem (missing, unreadable, not UTF-8, not YAML, not a mapping) becomes one line
naming the file, raised as the caller's error class.

Booleans are YAML 1.2's: only `true` and `false` (any case). YAML 1.1 also read `on`, `off`,
`yes` and `no` as booleans, so a machine state `off:` (a power level, a signal level) would
have become the key `False`; here they stay words.

    data = read_mapping("line.yaml", LineError, "a mapping of line fields")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans: `on`, `off`, `yes`, `no` are strings."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    """Parse YAML text the way every input file is read (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=Yaml12Loader)


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
        data = load_yaml(text)
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

"""Dotted paths into a line file: how an experiment names the knob it turns.

A path walks the plain data of a line file before validation. Mapping keys are
path segments; lists of named entries (stations, products) are addressed by the
entry's `name`, so `stations.mill.buffer` is the `buffer` of the station called
`mill`, and `stations.paint.failures.mttr` goes one level deeper. A missing
mapping on the way (a station without `failures`) is created; a missing named
entry or a step into a plain value is an error, raised as `PathError` with a
short message that the caller prefixes with the file and field.

    >>> data = {"stations": [{"name": "mill", "cycle_time": 60}]}
    >>> set_path(data, "stations.mill.failures.mttr", "5min")
    >>> data["stations"][0]["failures"]
    {'mttr': '5min'}
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any


class PathError(ValueError):
    """A dotted path does not lead anywhere in the line's data."""


def split_path(path: str) -> list[str]:
    """'stations.mill.buffer' -> ['stations', 'mill', 'buffer'], rejecting empty segments."""
    parts = path.split(".")
    if not path or any(not part.strip() for part in parts):
        raise PathError(f"not a dotted path: {path!r}")
    return parts


def check_paths(value: Mapping[str, Any]) -> Any:
    """A field validator for mappings keyed by dotted paths (`overrides`, `factors`, `variables`):
    `value` unchanged, or a ValueError naming the first key that is not a dotted path."""
    for path in value:
        try:
            split_path(path)
        except PathError as exc:
            raise ValueError(str(exc)) from None
    return value


def _named(entries: list[Any], name: str) -> dict[str, Any] | None:
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("name")) == name:
            return entry
    return None


def _names(entries: list[Any]) -> str:
    return ", ".join(str(entry.get("name")) for entry in entries if isinstance(entry, dict))


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the field at `path` inside `data` (in place) to a copy of `value`."""
    parts = split_path(path)
    node: Any = data
    walked: list[str] = []
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        if isinstance(node, list):
            entry = _named(node, part)
            if entry is None:
                where = ".".join(walked)
                kind = walked[-1].rstrip("s") if walked else "entry"
                raise PathError(f"unknown {kind} {part!r} in {where} (known: {_names(node)})")
            if last:
                raise PathError(f"{path} names a whole {walked[-1].rstrip('s')}, not one of its fields")
            node = entry
        elif isinstance(node, dict):
            if last:
                node[part] = copy.deepcopy(value)
                return
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            node = child
        else:
            raise PathError(f"{'.'.join(walked)} is a value, it has no field {part!r}")
        walked.append(part)


def get_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at `path`, or None when any step is missing."""
    node: Any = data
    for part in split_path(path):
        if isinstance(node, list):
            node = _named(node, part)
        elif isinstance(node, Mapping):
            node = node.get(part)
        else:
            return None
        if node is None:
            return None
    return node


_INDEXED = re.compile(r"^(\w+)\[(\d+)\]")


def named_location(data: Mapping[str, Any], location: str) -> str:
    """A validation error's index path in name form: 'stations[0].buffer' -> 'stations.mill.buffer'."""
    text = location
    node: Any = data
    out: list[str] = []
    while text:
        match = _INDEXED.match(text)
        if match:
            key, index = match.group(1), int(match.group(2))
            entries = node.get(key) if isinstance(node, Mapping) else None
            entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
            name = entry.get("name") if isinstance(entry, Mapping) else None
            out.append(f"{key}.{name}" if name is not None else match.group(0))
            node = entry
            text = text[match.end() :].removeprefix(".")
            continue
        key, _, text = text.partition(".")
        out.append(key)
        node = node.get(key) if isinstance(node, Mapping) else None
    return ".".join(out)

"""Running a dashboard's InfluxQL as Grafana would: template variables and time macros filled in.

Grafana replaces `$timeFilter` with `time >= <from>ms and time <= <to>ms`, `$__interval`
with the bucket it chose for the panel's width, and a variable inside a regex with the
value escaped, or `(a|b|c)` when several values (or All) are selected. `Resolver` does the
same, taking each query variable's values from InfluxDB itself (so the variable queries are
tested too) and a custom variable's from its list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fabbrica.grafana.model import Dashboard, Query, Variable

from ..connectors.conftest import influxql

_VARIABLE = re.compile(r"\$(\w+)")
_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|{}\[\]/]")


def escape_regex(value: str) -> str:
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


@dataclass
class Resolver:
    url: str
    database: str
    start_ms: int
    end_ms: int
    interval: str = "1s"

    def macros(self) -> dict[str, str]:
        return {
            "timeFilter": f"time >= {self.start_ms}ms and time <= {self.end_ms}ms",
            "__interval": self.interval,
            "__interval_ms": str(int(self.interval.rstrip("s")) * 1000),
        }

    def fill(self, text: str, values: dict[str, list[str]]) -> str:
        """Substitute macros and variables (longest names first, as Grafana's regex does)."""
        macros = self.macros()

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in macros:
                return macros[name]
            if name not in values:
                return match.group(0)  # e.g. $tag_station in an alias
            chosen = [escape_regex(value) for value in values[name]]
            return chosen[0] if len(chosen) == 1 else "(" + "|".join(chosen) + ")"

        return _VARIABLE.sub(replace, text)

    def run(self, text: str) -> list[dict[str, Any]]:
        return influxql(self.url, self.database, text)

    def variable_values(self, board: Dashboard) -> dict[str, list[str]]:
        """Every variable's values, in dashboard order (later queries may use earlier variables)."""
        values: dict[str, list[str]] = {}
        for variable in board.variables:
            values[variable.name] = self.values_of(variable, values)
        return values

    def values_of(self, variable: Variable, known: dict[str, list[str]]) -> list[str]:
        if variable.custom:
            return list(variable.values) if variable.include_all else [variable.current or variable.values[0]]
        series = self.run(self.fill(variable.query, known))
        found = sorted({str(row[1]) for item in series for row in item.get("values", [])})
        assert found, f"variable {variable.name}: {variable.query} found no values"
        if variable.multi or variable.include_all:
            return found
        if variable.current in found:
            return [variable.current]
        return found[:1]


def expand(query: Query, repeat: str | None, values: dict[str, list[str]]) -> Iterator[dict[str, list[str]]]:
    """The variable values for each copy of a panel: one per value of its repeat variable."""
    if repeat is None:
        yield values
        return
    for value in values[repeat]:
        yield {**values, repeat: [value]}


def rows(series: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in series:
        for values in item.get("values", []):
            yield {**dict(zip(item["columns"], values, strict=True)), **(item.get("tags") or {})}

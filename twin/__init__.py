"""The digital twin of a pilot line: line definitions, the SimPy engine and its KPIs.

`twin` knows no protocol and no database: line files and data frames go in,
flat run records, KPIs and reports come out.
"""

from twin.engine import RunResult, simulate
from twin.line import Line, LineError, load_line

__all__ = ["Line", "LineError", "RunResult", "load_line", "simulate"]

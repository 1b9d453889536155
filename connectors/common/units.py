"""Durations and sizes in a connector config: now `foundation.durations`, the one parser of the project.

A thin re-export kept while `connectors/sinks/` still imports it from here; once the sinks
import `foundation.durations` themselves, delete this module.
"""

from foundation.durations import Duration, Size, parse_duration, parse_size

__all__ = ["Duration", "Size", "parse_duration", "parse_size"]

"""The settings of the embedded historian: one DuckDB file.

sink: {type: embedded, path: historian.duckdb}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field

from connectors.sinks.base import SinkSettings


class EmbeddedSink(SinkSettings):
    """The embedded historian: a DuckDB file (relative paths are relative to the config file)."""

    type: Literal["embedded"]
    path: str = Field(default="historian.duckdb", min_length=1)

    def resolved(self, base: Path) -> Self:
        if Path(self.path).is_absolute():
            return self
        return self.model_copy(update={"path": str(base / self.path)})

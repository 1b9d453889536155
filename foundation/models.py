"""The strict base of every validated file model: unknown keys are errors, and a loaded model never changes.

    class Spool(Strict):
        path: str = "spool"

Subclasses may extend `model_config` (pydantic merges it), for example with
`populate_by_name=True` where a field has an alias.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A model that refuses unknown keys and is frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

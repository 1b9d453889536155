"""The shipped optimisations load, and run end to end when made small (the full ones take minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.yamlfile import read_mapping
from tests.conftest import ROOT
from twin.optimisation import Optimisation, OptimisationError

EXAMPLES = sorted((ROOT / "simulations" / "optimisation").glob("*.yaml"))


def test_examples_are_shipped() -> None:
    assert {path.stem for path in EXAMPLES} >= {"buffers", "conwip"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_when_made_small(path: Path, tmp_path: Path) -> None:
    Optimisation.from_yaml(path)  # the file as shipped is valid
    data = read_mapping(path, OptimisationError, "a mapping")
    data.update(horizon="3h", warmup="20min", replications=2, budget={"evaluations": 3})
    data["selection"] = {**data["selection"], "first": 3, "max_replications": 6}
    result = Optimisation.from_dict(data, base_dir=path.parent).run(workers=1, out=tmp_path)
    assert len(result.designs) == 3
    assert {"evaluations.parquet", "optimization.json", "report.html", "study.journal"} <= {
        p.name for p in tmp_path.iterdir()
    }

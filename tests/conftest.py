"""Shared fixtures: paths of the shipped examples, helpers to write line and study files, and a
real Dask cluster on loopback for the tests that run on `--scheduler` (tests/dask_cluster.py).

Also the hypothesis profile of every property in tests/: the default suite ("fixed") draws the
same examples on every machine and keeps no database, so it passes or fails alike everywhere;
`FUZZ_EXAMPLES=...` (or HYPOTHESIS_PROFILE=explore) draws new ones ("explore"), and a case it
finds is pinned with `@example` (tests/fuzzing.py). It is loaded here, before any test module
is imported, because a `settings(...)` takes the profile loaded when it is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

from tests.dask_cluster import dask_cluster

ROOT = Path(__file__).resolve().parent.parent
DEMONSTRATOR = ROOT / "simulations" / "lines" / "demonstrator.yaml"

settings.register_profile("fixed", settings.get_profile("default"), derandomize=True, database=None)
settings.register_profile("explore", settings.get_profile("default"), derandomize=False, print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "explore" if "FUZZ_EXAMPLES" in os.environ else "fixed"
)
settings.load_profile(HYPOTHESIS_PROFILE)

# The suite runs on two pytest-xdist workers (scripts/test.sh: -n 2 --dist loadgroup; a third on
# two cores made the served lines' timing tests fail on a loaded machine). Every test is grouped by
# its file: a file's tests run one after the other on one worker, sharing its servers (a file that
# serves the line or starts a server: "line:<file>") or the replications its checks compute once
# (functools.cache, module fixtures: "cpu:<file>"); at most two files run at once.
CPU_BOUND = (
    "tests/twin/",
    "tests/test_cli_bad_files.py",
    "tests/test_cli_forecast.py",
    "tests/test_cli_forecast_network.py",
    "tests/test_cli_twin.py",
    "tests/test_fuzz_connectors_and_experiments.py",
    "tests/test_fuzz_parsers.py",
    "tests/test_hypothesis_profile.py",
    "tests/test_import_direction.py",
    "tests/test_state_names.py",
)
# tests/twin/ folders with a server of their own (the Dask cluster, a Ctrl-C within a deadline)
DASK_GROUP = ("tests/twin/experiments/", "tests/twin/optimisation/")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Each test's group, as it is collected (before xdist reads the groups into the node ids)."""
    path = item.nodeid.split("::")[0]
    if path.startswith(DASK_GROUP):
        item.add_marker(pytest.mark.xdist_group("dask"))
    elif path.startswith(CPU_BOUND):
        item.add_marker(pytest.mark.xdist_group(f"cpu:{path}"))
    else:
        item.add_marker(pytest.mark.xdist_group(f"line:{path}"))


# The longest files (their tests' total time in a full run, longest first): xdist hands them out
# first (scripts/test.sh: --no-loadscope-reorder keeps this order), so that no long file starts
# near the end while the other workers have run out of work.
LONGEST_FIRST = (
    "cpu:tests/twin/test_theory.py",
    "line:tests/test_closed_loop.py",
    "line:tests/chaos/test_chaos.py",
    "line:tests/test_demo.py",
    "line:tests/test_state_reconstruction.py",
    "line:tests/test_demo_auth.py",
    "dask",
    "line:tests/test_advise_cli.py",
    "line:tests/connectors/test_opcua.py",
    "cpu:tests/test_cli_forecast.py",
    "cpu:tests/twin/test_network_theory.py",
    "cpu:tests/twin/test_forecast_coverage.py",
    "line:tests/test_demo_network.py",
    "line:tests/twinloop/test_live.py",
    "line:tests/grafana/test_publish.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order xdist hands the files out in: LONGEST_FIRST, then the other files, those with the
    most tests first, so that the short files fill the workers' ends."""
    groups = [_group(item) for item in items]
    sizes = Counter(groups)
    rank = {group: index for index, group in enumerate(LONGEST_FIRST)}
    order = {item.nodeid: (rank.get(group, len(rank)), -sizes[group], group)
             for item, group in zip(items, groups, strict=True)}  # fmt: skip
    items.sort(key=lambda item: order[item.nodeid])


def _group(item: pytest.Item) -> str:
    marker = item.get_closest_marker("xdist_group")
    return str(marker.args[0]) if marker is not None else ""


@pytest.fixture
def write_line(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a line definition to a YAML file in a temporary folder and return its path."""

    def write(data: dict[str, Any], name: str = "line.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


WriteStudy = Callable[..., Path]


def study_writer(folder: Path, default_line: Mapping[str, Any], default_name: str) -> WriteStudy:
    """`write(data, line=None, name=default_name)`: write a line file (`default_line` unless given) to
    folder/lines/tandem.yaml and a study file (an experiment or an optimisation) naming it,
    `{"line": "lines/tandem.yaml", **data}`, to folder/name; return the study file's path."""

    def write(
        data: Mapping[str, Any], line: Mapping[str, Any] | None = None, name: str = default_name
    ) -> Path:
        (folder / "lines").mkdir(exist_ok=True)
        line_data = dict(line or default_line)
        (folder / "lines" / "tandem.yaml").write_text(yaml.safe_dump(line_data, sort_keys=False))
        path = folder / name
        path.write_text(yaml.safe_dump({"line": "lines/tandem.yaml", **data}, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Dask scheduler and two single-threaded worker processes on 127.0.0.1, one for the
    whole session; yields its address (tcp://127.0.0.1:PORT)."""
    with dask_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


def run_fabbrica(
    *args: str, timeout: float = 600, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `fabbrica` command in a fresh interpreter, as a user would; `env` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "fabbrica", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env={**os.environ, **env} if env is not None else None,
    )


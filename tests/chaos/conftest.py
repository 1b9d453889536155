"""The chaos suite's servers: one Mosquitto and one InfluxDB 1.x for the session, which the
scenarios kill and start again on the same ports and data folders (tests/chaos/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.harness import Stack


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("chaos-stack")).start()
    yield stack
    stack.stop()

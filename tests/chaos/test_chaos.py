"""Fault injection while the simulated line streams through the connector into InfluxDB 1.x.

Each scenario breaks one thing mid-run, heals it, and compares the database with the line's
truth file (tests/chaos/harness.py): nothing lost, nothing twice, every stored value (PLC
variables, part events, sensor readings) exactly the truth's at its instant; with a full spool,
exactly what the connector reports as dropped is missing. That a wrong value fails a scenario is
shown without servers in tests/chaos/test_value_check.py. Short faults here (about 90 s for all six);
`CHAOS_FULL=1` runs the full durations (a 60 s database outage), and
`python -m tests.chaos.campaign --out chaos-results/` writes the figures of docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.chaos.harness import SCENARIOS, goal_met, run_scenario

FULL = os.environ.get("CHAOS_FULL") == "1"


@pytest.mark.chaos
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fault_loses_nothing_and_stores_nothing_twice(chaos_stack, scenario, tmp_path):
    outcome = run_scenario(chaos_stack, scenario, tmp_path / scenario, full=FULL)
    report = json.dumps(outcome.as_dict(), indent=1)
    if scenario == "spool-full":
        assert outcome.dropped_reported > 0, report  # the spool did overflow
        assert outcome.lost == outcome.dropped_reported, report
    else:
        assert outcome.lost == 0, report
        assert outcome.dropped_reported == 0, report
    assert outcome.duplicated == 0, report
    # stored values equal the truth's: the PLC's, the part events' and each sensor reading's
    assert outcome.wrong_values == 0, report
    assert all(outcome.details[part]["checked"] > 0 for part in ("opcua", "parts", "sensors")), report
    # what the PLCs showed while no session existed comes back from their history (backfill)
    assert outcome.opcua_gap == 0, report
    assert goal_met(outcome), report
    assert outcome.stored > 0 and outcome.recovery_s is not None, report

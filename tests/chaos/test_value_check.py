"""The chaos bill compares stored values with the truth, not only timestamps and counts.

A replay that stored a value under the right timestamp but with another value (a stale sample,
a field from the wrong message) would pass a check of instants and counts. Here a small truth
file and the rows the connector would store for it go through `line_bill` untouched (the
scenario's goal is met), then with one value altered at the same instant (it is missed, and the
bill names the series and the instant). No servers: the servers' run is tests/chaos/test_chaos.py.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.harness import Outcome, Stored, goal_met, iso_ns, line_bill, ns_iso, same_value, tally

T0 = "2025-01-31T08:00:00.000000Z"
T1 = "2025-01-31T08:00:00.916667Z"
T2 = "2025-01-31T08:00:01.250000Z"
T3 = "2025-01-31T08:00:01.350000Z"

TRUTH: dict[str, Any] = {
    "start": T0,
    "stations": {
        "mill": {
            "states": [{"ts": T0, "t": 0.0, "state": 0}, {"ts": T2, "t": 75.0, "state": 3}],
            "values": {
                "PartsProduced": [{"ts": T1, "t": 55.0, "value": 1}],
                "LastCycleTime": [{"ts": T1, "t": 55.0, "value": 55.03417796524}],
                "TimeWorking": [{"ts": T2, "t": 75.0, "value": 0.1 + 0.2}],
            },
            "parts": [
                {"ts": T1, "t": 55.0, "product": "A", "cycle_time_s": 55.03417796524, "scrapped": False,
                 "parts_produced": 1, "parts_scrapped": 0, "from": "release", "to": "lathe",
                 "reworked": False},
            ],
            "messages": {
                "energy": {"published": 2, "dropped": 0},
                "events": {"published": 1, "dropped": 0},
            },
            "readings": {"energy": [{"ts": T2, "value": 0.0012478921}, {"ts": T3, "value": 7.5}]},
        },
    },
}  # fmt: skip
TRUTH_COPY = copy.deepcopy(TRUTH)


def stored_rows(truth: dict[str, Any]) -> Stored:
    """The rows InfluxDB gives back for what the connector stored of `truth`: one `machine` row per
    station and instant with every variable that changed then, one row per part and per reading."""
    machine: dict[tuple[str, int], dict[str, Any]] = {}
    parts, sensors = [], []
    for station, record in truth["stations"].items():
        entries = [("State", entry["ts"], entry["state"]) for entry in record["states"]]
        for variable, values in record["values"].items():
            entries += [(variable, entry["ts"], entry["value"]) for entry in values]
        for variable, ts, value in entries:
            row = machine.setdefault((station, iso_ns(ts)), {"time": iso_ns(ts), "line": "demonstrator",
                                                             "station": station})  # fmt: skip
            row[variable] = value
        for part in record["parts"]:
            fields = {key: value for key, value in part.items() if key not in ("ts", "t")}
            parts.append({"time": iso_ns(part["ts"]), "line": "demonstrator", "station": station, **fields})
        for sensor, samples in record["readings"].items():
            sensors += [
                {"time": iso_ns(sample["ts"]), "value": sample["value"], "line": "demonstrator",
                 "sensor": sensor, "station": station, "unit": "kWh"}
                for sample in samples
            ]  # fmt: skip
    return Stored(machine=list(machine.values()), parts=parts, sensors=sensors)


def outcome(stored: Stored) -> Outcome:
    details = line_bill(TRUTH, stored)
    return Outcome(scenario="broker-kill", mode="unit", fault_s=0.0, dropped_reported=0, recovery_s=0.0,
                   reconnects=0, wall_s=0.0, details=details, **tally(details))  # fmt: skip


def _row(rows: list[dict[str, Any]], ts: str, key: str) -> dict[str, Any]:
    return next(row for row in rows if row["time"] == iso_ns(ts) and key in row)


def _next_float(value: float) -> float:
    return math.nextafter(value, math.inf)  # one unit in the last place


def _plc_float(stored: Stored) -> None:
    row = _row(stored.machine, T1, "LastCycleTime")
    row["LastCycleTime"] = _next_float(row["LastCycleTime"])


def _plc_state(stored: Stored) -> None:
    _row(stored.machine, T2, "State")["State"] = 2


def _reading(stored: Stored) -> None:
    row = _row(stored.sensors, T3, "value")
    row["value"] = 0.0012478921  # the previous sample's value, replayed under this instant


def _part(stored: Stored) -> None:
    _row(stored.parts, T1, "scrapped")["scrapped"] = 0  # an int where the truth has a bool


def _part_destination(stored: Stored) -> None:
    _row(stored.parts, T1, "to")["to"] = "wash"  # where the part went, wrong


def _moved_reading(stored: Stored) -> None:
    _row(stored.sensors, T2, "value")["time"] += 1000  # the same value one microsecond later


ALTERATIONS: dict[str, tuple[Callable[[Stored], None], str, str]] = {
    "PLC float one ulp off": (_plc_float, "mill/LastCycleTime", T1),
    "PLC state": (_plc_state, "mill/State", T2),
    "sensor reading replayed": (_reading, "mill/energy", T3),
    "part field": (_part, "mill/part.scrapped", T1),
    "part destination": (_part_destination, "mill/part.to", T1),
    "reading at an instant never published": (_moved_reading, "mill/energy", "2025-01-31T08:00:01.250001Z"),
}


def test_the_stored_truth_meets_the_goal() -> None:
    result = outcome(stored_rows(TRUTH))
    assert result.wrong_values == 0 and result.lost == 0 and result.duplicated == 0, result.details
    checked = {name: result.details[name]["checked"] for name in ("opcua", "parts", "sensors")}
    assert checked == {"opcua": 5, "parts": 8, "sensors": 2}  # every value of the truth compared
    assert goal_met(result)


@pytest.mark.parametrize("alteration", list(ALTERATIONS))
def test_one_altered_value_fails_the_scenario_and_is_named(alteration: str) -> None:
    alter, series, instant = ALTERATIONS[alteration]
    stored = stored_rows(TRUTH)
    alter(stored)
    result = outcome(stored)
    assert result.wrong_values == 1, result.details
    assert not goal_met(result)
    examples = [text for bill in result.details.values() for text in bill["wrong_examples"]]
    assert len(examples) == 1 and examples[0].startswith(f"{series} at {instant}: stored "), examples
    assert TRUTH == TRUTH_COPY  # the truth itself was not touched


def test_values_compare_exactly() -> None:
    assert same_value(0.1 + 0.2, 0.30000000000000004) and not same_value(0.1 + 0.2, 0.3)
    assert same_value(5, 5.0)  # InfluxDB's JSON gives a whole float back as an integer
    assert not same_value(1, True) and not same_value(False, 0) and same_value(True, True)
    assert same_value("A", "A") and not same_value("A", "B")
    assert ns_iso(iso_ns(T1)) == T1

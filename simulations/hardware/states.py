"""Machine states as a PLC shows them: the twin's codes, OPC 40001-1 MachineryItemState and PackML.

The twin's machine states (twin.station) are the PLC's `State` variable. Each maps to the
top-level state of OPC 40001-1 (OPC UA for Machinery) MachineryItemState and its
MachineryOperationMode, and to a PackML (ISA-TR88.00.02) state and unit mode, so that a client
written against either convention can read the simulated line. Every map is written by state
name and checked at import against `twin.station.STATE_NAMES`: a new state without a mapping
fails at once, naming itself. A station with several machines shows the most significant state
of its machines (`STATION_PRIORITY`).

The choices, by the two standards' own words (docs/simulated-hardware.md has the table):
- OPC 40001-1: NotAvailable is "not available and does not perform any activity" (switched off,
  energy saving), which is a planned stop (SEMI E10 non-scheduled time) and a machine switched off
  after idling; OutOfService "not functional", a breakdown, the wait for a technician, and a
  preventive maintenance (told apart by the operation mode Maintenance: scheduled downtime);
- PackML: a planned stop is Idle (the line stands ready, parts in place, and the shift's start
  starts it again without a Reset), an operator's Stop is Stopped; a machine switched off while
  starved stays Suspended (an external condition, and it restarts by itself when a part comes);
  a preventive maintenance is Stopped in the unit mode Maintenance ("routine preventive or
  planned maintenance", PackML implementation guide); a breakdown is Held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from twin.station import (
    BLOCKED,
    DOWN,
    MAINTENANCE,
    OFF,
    PLANNED_STOP,
    SETUP,
    STARVED,
    STATE_NAMES,
    STOPPED,
    WAITING_REPAIR,
    WORKING,
    StateName,
)

T = TypeVar("T")

# OPC 40001-1 MachineryItemState_StateMachineType, StateNumber of each top-level state
NOT_AVAILABLE, OUT_OF_SERVICE, NOT_EXECUTING, EXECUTING = 0, 1, 2, 3
MACHINERY_ITEM_STATE_NAMES = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")
# OPC 40001-1 MachineryOperationModeStateMachineType, StateNumber of each mode
MODE_NONE, MODE_MAINTENANCE, MODE_SETUP, MODE_PROCESSING = 0, 1, 2, 3
MACHINERY_OPERATION_MODE_NAMES = ("None", "Maintenance", "Setup", "Processing")

# PackML state numbers (ISA-TR88.00.02)
PACKML_STOPPED, PACKML_IDLE, PACKML_SUSPENDED, PACKML_EXECUTE, PACKML_HELD = 2, 4, 5, 6, 11
PACKML_NAMES = {
    PACKML_STOPPED: "Stopped",
    PACKML_IDLE: "Idle",
    PACKML_SUSPENDED: "Suspended",
    PACKML_EXECUTE: "Execute",
    PACKML_HELD: "Held",
}
# PackML unit modes: Produce 1, Maintenance 2 (ProductionMaintenanceModeEnum, OPC 30050); Changeover 4
# as the PackML implementation guide numbers it (ControlModeEnumeration, OPC 40301)
UNIT_PRODUCE, UNIT_MAINTENANCE, UNIT_CHANGEOVER = 1, 2, 4
PACKML_UNIT_MODE_NAMES = {
    UNIT_PRODUCE: "Produce",
    UNIT_MAINTENANCE: "Maintenance",
    UNIT_CHANGEOVER: "Changeover",
}


def _by_code(table: Mapping[StateName, T], what: str) -> dict[int, T]:
    """`table` (by state name) keyed by state code; every state of `STATE_NAMES` must be in it."""
    missing = [name for name in STATE_NAMES if name not in table]
    if missing:
        raise LookupError(f"{what} has no entry for the state(s) {', '.join(missing)}")
    return {code: table[name] for code, name in enumerate(STATE_NAMES)}


MACHINERY_ITEM_STATE = _by_code(
    {
        "working": EXECUTING,
        "setup": EXECUTING,
        "blocked": NOT_EXECUTING,
        "starved": NOT_EXECUTING,
        "stopped": NOT_EXECUTING,
        "down": OUT_OF_SERVICE,
        "waiting_repair": OUT_OF_SERVICE,
        "maintenance": OUT_OF_SERVICE,
        "planned_stop": NOT_AVAILABLE,  # SEMI E10 non-scheduled time
        "off": NOT_AVAILABLE,  # switched off to save energy
    },
    "MACHINERY_ITEM_STATE",
)

MACHINERY_OPERATION_MODE = _by_code(
    {
        "working": MODE_PROCESSING,
        "setup": MODE_SETUP,
        "blocked": MODE_PROCESSING,
        "starved": MODE_PROCESSING,
        "stopped": MODE_PROCESSING,
        "down": MODE_PROCESSING,  # OutOfService in Processing: unscheduled downtime
        "waiting_repair": MODE_PROCESSING,
        "maintenance": MODE_MAINTENANCE,  # OutOfService in Maintenance: scheduled downtime
        "planned_stop": MODE_NONE,
        "off": MODE_PROCESSING,
    },
    "MACHINERY_OPERATION_MODE",
)

PACKML_STATE = _by_code(
    {
        "working": PACKML_EXECUTE,
        "setup": PACKML_EXECUTE,  # in the unit mode Changeover
        "blocked": PACKML_SUSPENDED,
        "starved": PACKML_SUSPENDED,
        "stopped": PACKML_STOPPED,
        "down": PACKML_HELD,
        "waiting_repair": PACKML_HELD,  # held, waiting for maintenance
        "maintenance": PACKML_STOPPED,  # in the unit mode Maintenance
        "planned_stop": PACKML_IDLE,
        "off": PACKML_SUSPENDED,
    },
    "PACKML_STATE",
)

PACKML_UNIT_MODE = _by_code(
    {
        "working": UNIT_PRODUCE,
        "setup": UNIT_CHANGEOVER,
        "blocked": UNIT_PRODUCE,
        "starved": UNIT_PRODUCE,
        "stopped": UNIT_PRODUCE,
        "down": UNIT_PRODUCE,
        "waiting_repair": UNIT_PRODUCE,
        "maintenance": UNIT_MAINTENANCE,
        "planned_stop": UNIT_PRODUCE,
        "off": UNIT_PRODUCE,
    },
    "PACKML_UNIT_MODE",
)

# a line with a shift calendar shows its shift (True: planned production time) at the line level: a
# planned stop as its stations show it, planned time as Executing / Execute
SHIFT_MACHINERY_ITEM_STATE = {True: EXECUTING, False: MACHINERY_ITEM_STATE[PLANNED_STOP]}
SHIFT_PACKML_STATE = {True: PACKML_EXECUTE, False: PACKML_STATE[PLANNED_STOP]}

# a station with several machines shows the first of these that any machine is in (all at once
# are in a planned stop)
STATION_PRIORITY = (
    WORKING,
    SETUP,
    DOWN,
    WAITING_REPAIR,
    MAINTENANCE,
    BLOCKED,
    STARVED,
    OFF,
    STOPPED,
    PLANNED_STOP,
)
if sorted(STATION_PRIORITY) != list(range(len(STATE_NAMES))):
    raise LookupError("STATION_PRIORITY must rank every state of twin.station.STATE_NAMES once")
_RANK = {state: rank for rank, state in enumerate(STATION_PRIORITY)}


def station_state(states: list[int]) -> int:
    """The state a station's PLC shows for the states of its machines."""
    if len(states) == 1:
        return states[0]
    return min(states, key=_RANK.__getitem__)


def state_name(state: int) -> str:
    return STATE_NAMES[state]


__all__ = [
    "BLOCKED",
    "DOWN",
    "MACHINERY_ITEM_STATE",
    "MACHINERY_ITEM_STATE_NAMES",
    "MACHINERY_OPERATION_MODE",
    "MACHINERY_OPERATION_MODE_NAMES",
    "MAINTENANCE",
    "OFF",
    "PACKML_NAMES",
    "PACKML_STATE",
    "PACKML_UNIT_MODE",
    "PACKML_UNIT_MODE_NAMES",
    "PLANNED_STOP",
    "SETUP",
    "SHIFT_MACHINERY_ITEM_STATE",
    "SHIFT_PACKML_STATE",
    "STARVED",
    "STATION_PRIORITY",
    "STOPPED",
    "WAITING_REPAIR",
    "WORKING",
    "state_name",
    "station_state",
]

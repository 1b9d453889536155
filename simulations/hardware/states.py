"""Machine states as a PLC shows them: the twin's codes, OPC 40001 MachineryItemState and PackML.

The twin's machine states (twin.station) are the PLC's `State` variable. Each maps to
the top-level state of OPC 40001-1 (OPC UA for Machinery) MachineryItemState and to a
PackML (ISA-TR88.00.02) state number, so that a client written against either
convention can read the simulated line. A station with several machines shows the
most significant state of its machines (`STATION_PRIORITY`).
"""

from __future__ import annotations

from twin.station import BLOCKED, DOWN, SETUP, STARVED, STATE_NAMES, STOPPED, WAITING_REPAIR, WORKING

# OPC 40001-1 MachineryItemState_StateMachineType, StateNumber of each top-level state
NOT_AVAILABLE, OUT_OF_SERVICE, NOT_EXECUTING, EXECUTING = 0, 1, 2, 3
MACHINERY_ITEM_STATE_NAMES = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")

# PackML state numbers (ISA-TR88.00.02)
PACKML_STOPPED, PACKML_SUSPENDED, PACKML_EXECUTE, PACKML_HELD = 2, 5, 6, 11
PACKML_NAMES = {
    PACKML_STOPPED: "Stopped",
    PACKML_SUSPENDED: "Suspended",
    PACKML_EXECUTE: "Execute",
    PACKML_HELD: "Held",
}

MACHINERY_ITEM_STATE = {
    WORKING: EXECUTING,
    SETUP: EXECUTING,
    BLOCKED: NOT_EXECUTING,
    STARVED: NOT_EXECUTING,
    STOPPED: NOT_EXECUTING,
    DOWN: OUT_OF_SERVICE,
    WAITING_REPAIR: OUT_OF_SERVICE,
}

PACKML_STATE = {
    WORKING: PACKML_EXECUTE,
    SETUP: PACKML_EXECUTE,  # in the PackML unit mode "Changeover"
    BLOCKED: PACKML_SUSPENDED,
    STARVED: PACKML_SUSPENDED,
    STOPPED: PACKML_STOPPED,
    DOWN: PACKML_HELD,
    WAITING_REPAIR: PACKML_HELD,  # held, waiting for maintenance
}

# a station with several machines shows the first of these that any machine is in
STATION_PRIORITY = (WORKING, SETUP, DOWN, WAITING_REPAIR, BLOCKED, STARVED, STOPPED)
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
    "PACKML_NAMES",
    "PACKML_STATE",
    "SETUP",
    "STARVED",
    "STATION_PRIORITY",
    "STOPPED",
    "WAITING_REPAIR",
    "WORKING",
    "state_name",
    "station_state",
]

"""The approval of the twin's advice on the line's PLC: what an operator screen shows and decides.

The twin's service proposes an action (setpoints by path, `twin.setpoints`, with its expected
gain); an operator approves or rejects it; once approved, the service writes the setpoints and
the proposal is `applied` when every one of them has been written with the value proposed. One
proposal is current at a time: a new one supersedes a pending one. Every step is kept, with the
line's time and the user, for the truth file.

It follows OPC 40001-3 (Machinery Job Management, on OPC 10031-4's job orders) in its states:
`pending` is a job order stored but NotAllowedToStart (`Store`), `approved` AllowedToStart
(`Start`), `rejected` cancelled (`Cancel`), `applied` Ended; docs/simulated-hardware.md says
where the names differ. Nothing here knows a protocol: the virtual PLC (simulations.hardware.control)
maps its refusals onto status codes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from twin.line import Line
from twin.setpoints import Limits, SetpointError, parse

STATUSES = ("none", "pending", "approved", "rejected", "applied")


class ApprovalError(ValueError):
    """A proposal or decision the approval cannot take; `kind` says why, for the status code."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "invalid" (not an action), "out_of_range" (a setpoint outside limits), "state"


@dataclass
class Approvals:
    """The current proposal, its status and who decided it, and every step taken."""

    line: Line
    limits: Limits
    proposal_id: int = 0
    proposal: dict[str, Any] = field(default_factory=dict)
    action: dict[str, Any] = field(default_factory=dict)
    status: str = "none"
    decided_by: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    _written: set[str] = field(default_factory=set)

    def propose(self, text: str, user: str | None, t: float) -> int:
        """Take a proposal (JSON: `{"action": {PATH: value}, ...}`, the rest kept as given); its id."""
        try:
            proposal = json.loads(text)
        except ValueError as exc:
            raise ApprovalError("invalid", f"the proposal is not JSON: {exc}") from None
        action = proposal.get("action") if isinstance(proposal, dict) else None
        if not isinstance(action, dict) or not action:
            raise ApprovalError("invalid", 'the proposal must be {"action": {PATH: value, ...}, ...}')
        parsed = {}
        for path, value in action.items():
            try:
                parsed[path] = parse(self.line, path, value)
            except SetpointError as exc:
                raise ApprovalError("invalid", str(exc)) from None
            try:
                self.limits.check(path, parsed[path])
            except SetpointError as exc:
                raise ApprovalError("out_of_range", str(exc)) from None
        if self.status == "pending":
            self._event("superseded", user, t)
        self.proposal_id += 1
        self.proposal, self.action = proposal, parsed
        self.status, self.decided_by = "pending", ""
        self._written = set()
        self._event("proposed", user, t, proposal=proposal)
        return self.proposal_id

    def decide(self, proposal_id: int, approve: bool, user: str | None, t: float) -> None:
        """Approve or reject the pending proposal `proposal_id`."""
        if proposal_id != self.proposal_id or self.status == "none":
            raise ApprovalError(
                "invalid", f"no proposal {proposal_id} (the current one is {self.proposal_id})"
            )
        if self.status != "pending":
            raise ApprovalError("state", f"proposal {proposal_id} is {self.status}, not pending")
        self.status = "approved" if approve else "rejected"
        self.decided_by = user or ""
        self._event(self.status, user, t)

    def written(self, path: str, value: Any, user: str | None, t: float) -> bool:
        """A setpoint was written; True when that completes the approved action (now `applied`)."""
        if self.status != "approved" or path not in self.action or not _same(self.action[path], value):
            return False
        self._written.add(path)
        if self._written != set(self.action):
            return False
        self.status = "applied"
        self._event("applied", user, t)
        return True

    def _event(self, event: str, user: str | None, t: float, **more: Any) -> None:
        self.events.append({"t": t, "id": self.proposal_id, "event": event, "user": user, **more})


def _same(proposed: Any, written: Any) -> bool:
    if isinstance(proposed, bool) or isinstance(written, bool):
        return proposed is written
    return math.isclose(float(proposed), float(written), rel_tol=1e-9, abs_tol=0.0)

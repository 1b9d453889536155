"""What an operator acts on at the line's PLC: the release's setpoints and the twin's advice.

`Objects/<Line>/Release` holds the line's setpoints (`twin.setpoints`: `InterarrivalMean` on an
interarrival line, `ConwipLimit` on a CONWIP line, `Hold` on both), each with its `EURange`;
`Objects/<Line>/Advice` holds the proposal of the twin's service and its approval (`Proposal`,
`ProposalId`, `Status`, `DecidedBy`; methods `Propose`, `Approve`, `Reject`). A write is taken
only from an operator over a session secure enough (simulations.hardware.access), of the
setpoint's type, within its limits; then it is applied to the running line model at the line's
current instant, shown, logged and kept for the truth file. A refused one gets its Bad status
code, and is logged and kept too; the line is unchanged. A line whose release is saturated has
no setpoints, and neither object.

With one server per station, both objects are on the first station's server: the PLC at the
line's entry, which also counts the orders released (`PartsReleased`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asyncua import Node, Server, ua

from simulations.hardware.access import Access, Caller, Refusal, WriteHandler, caller, user_access_level
from simulations.hardware.access import user_executable as executable_for
from simulations.hardware.approval import ApprovalError
from simulations.hardware.clock import ScaledClock
from simulations.hardware.runtime import LineRuntime
from twin.setpoints import SETPOINTS, SetpointError, available, parse

logger = logging.getLogger(__name__)

# the OPC UA type of each kind of setpoint, and the variant types a write of it may carry
_VARIANT = {float: ua.VariantType.Double, int: ua.VariantType.UInt32, bool: ua.VariantType.Boolean}
_INTEGERS = frozenset(
    getattr(ua.VariantType, name)
    for name in ("SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64")
)
_ACCEPTED = {
    float: _INTEGERS | {ua.VariantType.Float, ua.VariantType.Double},
    int: _INTEGERS,
    bool: frozenset({ua.VariantType.Boolean}),
}
# UN/CEFACT codes of the setpoints' units (OPC 10000-8 EUInformation)
_UNECE = "http://www.opcfoundation.org/UA/units/un/cefact"
_UNITS = {"s": (5457219, "s", "second")}
_REFUSED = {"invalid": "BadInvalidArgument", "out_of_range": "BadOutOfRange", "state": "BadInvalidState"}
ADVICE_VARIABLES = (
    ("Proposal", ua.VariantType.String),
    ("ProposalId", ua.VariantType.UInt32),
    ("Status", ua.VariantType.String),
    ("DecidedBy", ua.VariantType.String),
)

MethodCall = Callable[..., Awaitable[Any]]


class LineControl:
    """The Release and Advice objects of one line, and the guard on every change of the line."""

    def __init__(self, runtime: LineRuntime, access: Access, clock: ScaledClock) -> None:
        self.runtime = runtime
        self.access = access
        self.clock = clock
        self.line_name = runtime.line.name
        self._server: Server | None = None
        self._release: dict[str, ua.NodeId] = {}  # setpoint path -> node
        self._advice: dict[str, ua.NodeId] = {}

    # -- the guard -----------------------------------------------------------------------
    def guarded(self, target: str, act: Callable[[Caller, list[Any]], Awaitable[Any]]) -> MethodCall:
        """A method callback that lets only who may change the line call `act(caller, arguments)`."""

        async def call(parent: ua.NodeId, *arguments: ua.Variant) -> Any:
            who = caller()
            values = [
                argument.Value if isinstance(argument, ua.Variant) else argument for argument in arguments
            ]
            refusal = self.access.refusal(who)
            if refusal is not None:
                return self.refused(target, values[0] if values else None, who, refusal)
            assert who is not None
            return await act(who, values)

        return call

    def refused(self, target: str, value: Any, who: Caller | None, refusal: Refusal) -> ua.StatusCode:
        """Log and keep a refused change; its status code."""
        user = None if who is None else who.user
        shown = value if value is None or isinstance(value, bool | int | float | str) else repr(value)
        t = self.runtime.refuse(target, shown, user, refusal.status, refusal.reason)
        logger.warning(
            "refused %s = %r by %s at t=%.3f s: %s (%s)",
            target,
            shown,
            user,
            t,
            refusal.reason,
            refusal.status,
        )
        return refusal.code

    # -- building ------------------------------------------------------------------------
    async def build(self, server: Server, line: Node, ns: int) -> dict[ua.NodeId, WriteHandler]:
        """Add Release and Advice under `line` (the line has setpoints); the write handlers of Release."""
        paths = available(self.runtime.line)
        if not paths:
            return {}
        self._server = server
        handlers: dict[ua.NodeId, WriteHandler] = {}
        prefix = f"{self.line_name}.Release"
        release = await line.add_object(ua.NodeId(prefix, ns), ua.QualifiedName("Release", ns))
        for path in paths:
            setpoint = SETPOINTS[path]
            variant = _VARIANT[setpoint.kind]
            node = await release.add_variable(
                ua.NodeId(f"{prefix}.{setpoint.variable}", ns),
                ua.QualifiedName(setpoint.variable, ns),
                ua.Variant(self.runtime.setpoints[path], variant),
                varianttype=variant,
            )
            await node.write_attribute(
                ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(setpoint.description)))
            )
            await self._show(node.nodeid, self.runtime.setpoints[path], variant, 0.0)
            if path in self.runtime.limits.bounds:
                await self._analog(node, prefix, ns, path, setpoint.unit)
            access = ua.DataValue(
                ua.Variant(
                    ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask, ua.VariantType.Byte
                )
            )
            await server.write_attribute_value(node.nodeid, access, ua.AttributeIds.AccessLevel)
            server.iserver.aspace.set_attribute_value_callback(
                node.nodeid, ua.AttributeIds.UserAccessLevel, user_access_level(self.access)
            )
            self._release[path] = node.nodeid
            handlers[node.nodeid] = self._writer(path, variant)
        await self._build_advice(server, line, ns)
        return handlers

    async def _analog(self, node: Node, prefix: str, ns: int, path: str, unit: str) -> None:
        """Make a numeric setpoint an AnalogItem: its EURange (the limits) and engineering unit."""
        setpoint = SETPOINTS[path]
        low, high = self.runtime.limits.bounds[path]
        shown = (float("-inf") if low is None else float(low), float("inf") if high is None else float(high))
        await node.delete_reference(ua.ObjectIds.BaseDataVariableType, ua.ObjectIds.HasTypeDefinition)
        await node.add_reference(ua.ObjectIds.AnalogItemType, ua.ObjectIds.HasTypeDefinition)
        await node.add_property(
            ua.NodeId(f"{prefix}.{setpoint.variable}.EURange", ns),
            ua.QualifiedName("EURange", 0),
            ua.Variant(ua.Range(*shown), ua.VariantType.ExtensionObject),
            datatype=ua.NodeId(ua.ObjectIds.Range),
        )
        if unit in _UNITS:
            code, name, description = _UNITS[unit]
            information = ua.EUInformation(
                NamespaceUri=_UNECE,
                UnitId=code,
                DisplayName=ua.LocalizedText(name),
                Description=ua.LocalizedText(description),
            )
            await node.add_property(
                ua.NodeId(f"{prefix}.{setpoint.variable}.EngineeringUnits", ns),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.Variant(information, ua.VariantType.ExtensionObject),
                datatype=ua.NodeId(ua.ObjectIds.EUInformation),
            )

    async def _build_advice(self, server: Server, line: Node, ns: int) -> None:
        prefix = f"{self.line_name}.Advice"
        advice = await line.add_object(ua.NodeId(prefix, ns), ua.QualifiedName("Advice", ns))
        for variable, variant in ADVICE_VARIABLES:
            node = await advice.add_variable(
                ua.NodeId(f"{prefix}.{variable}", ns),
                ua.QualifiedName(variable, ns),
                ua.Variant(self._advice_values()[variable], variant),
                varianttype=variant,
            )
            self._advice[variable] = node.nodeid
        await self._show_advice(0.0)
        methods = (
            ("Propose", self._propose, [ua.VariantType.String], [ua.VariantType.UInt32]),
            ("Approve", self._decider(True), [ua.VariantType.UInt32], []),
            ("Reject", self._decider(False), [ua.VariantType.UInt32], []),
        )
        for name, act, inputs, outputs in methods:
            method = await advice.add_method(
                ua.NodeId(f"{prefix}.{name}", ns),
                ua.QualifiedName(name, ns),
                self.guarded(f"Advice.{name}", act),
                inputs,
                outputs,
            )
            self.executable_for_operators(server, method.nodeid)

    def executable_for_operators(self, server: Server, method: ua.NodeId) -> None:
        """The method's UserExecutable: true for whoever may change the line."""
        server.iserver.aspace.set_attribute_value_callback(
            method, ua.AttributeIds.UserExecutable, executable_for(self.access)
        )

    # -- writes of the setpoints ---------------------------------------------------------
    def _writer(self, path: str, variant: ua.VariantType) -> WriteHandler:
        setpoint = SETPOINTS[path]
        target = f"Release.{setpoint.variable}"

        async def write(item: ua.WriteValue, who: Caller | None) -> ua.StatusCode:
            given = item.Value.Value if item.Value is not None else None
            value = given.Value if given is not None else None
            refusal = self.access.refusal(who)
            if refusal is None:
                refusal = self._check(path, given)
            if refusal is not None:
                return self.refused(target, value, who, refusal)
            assert who is not None
            parsed = parse(self.runtime.line, path, value)
            before = self.runtime.approvals.status
            t = self.runtime.change_setpoint(path, parsed, who.user)
            logger.info("setpoint %s (%s) = %r by %s at t=%.3f s", path, target, parsed, who.user, t)
            await self._show(self._release[path], parsed, variant, t)
            if self.runtime.approvals.status != before:
                await self._show_advice(t)
            return ua.StatusCode(ua.StatusCodes.Good)

        return write

    def _check(self, path: str, given: ua.Variant | None) -> Refusal | None:
        """Why the value written may not be the setpoint's: its type, or outside the limits."""
        setpoint = SETPOINTS[path]
        if given is None or given.VariantType not in _ACCEPTED[setpoint.kind] or given.is_array:
            shown = "nothing" if given is None else given.VariantType.name
            return Refusal("BadTypeMismatch", f"{path}: takes {_VARIANT[setpoint.kind].name}, got {shown}")
        try:
            value = parse(self.runtime.line, path, given.Value)
            self.runtime.limits.check(path, value)
        except SetpointError as exc:
            return Refusal("BadOutOfRange", str(exc))
        return None

    # -- the advice's methods ------------------------------------------------------------
    async def _propose(self, who: Caller, arguments: list[Any]) -> Any:
        text = arguments[0] if len(arguments) == 1 else None
        if not isinstance(text, str):
            return self.refused(
                "Advice.Propose", text, who, Refusal("BadInvalidArgument", "takes one String")
            )
        approvals = self.runtime.approvals
        try:
            proposal_id = approvals.propose(text, who.user, self.runtime.now)
        except ApprovalError as exc:
            return self.refused("Advice.Propose", text, who, Refusal(_REFUSED[exc.kind], str(exc)))
        logger.info("advice %d proposed by %s: %s", proposal_id, who.user, text)
        await self._show_advice(self.runtime.now)
        return [ua.Variant(proposal_id, ua.VariantType.UInt32)]

    def _decider(self, approve: bool) -> Callable[[Caller, list[Any]], Awaitable[Any]]:
        name = "Approve" if approve else "Reject"

        async def decide(who: Caller, arguments: list[Any]) -> Any:
            proposal_id = arguments[0] if len(arguments) == 1 else None
            if not isinstance(proposal_id, int) or isinstance(proposal_id, bool):
                refusal = Refusal("BadInvalidArgument", "takes one UInt32")
                return self.refused(f"Advice.{name}", proposal_id, who, refusal)
            try:
                self.runtime.approvals.decide(proposal_id, approve, who.user, self.runtime.now)
            except ApprovalError as exc:
                return self.refused(f"Advice.{name}", proposal_id, who, Refusal(_REFUSED[exc.kind], str(exc)))
            logger.info("advice %d %s by %s", proposal_id, self.runtime.approvals.status, who.user)
            await self._show_advice(self.runtime.now)
            return []

        return decide

    # -- showing -------------------------------------------------------------------------
    async def restamp(self) -> None:
        """Write the values again, stamped by the (re)started clock (as `VirtualPlcs.restamp`)."""
        if self._server is None:
            return
        t = self.clock.env.now
        for path, node in self._release.items():
            await self._show(node, self.runtime.setpoints[path], _VARIANT[SETPOINTS[path].kind], t)
        await self._show_advice(t)

    def _advice_values(self) -> dict[str, Any]:
        approvals = self.runtime.approvals
        return {
            "Proposal": json.dumps(approvals.proposal) if approvals.proposal else "",
            "ProposalId": approvals.proposal_id,
            "Status": approvals.status,
            "DecidedBy": approvals.decided_by,
        }

    async def _show_advice(self, t: float) -> None:
        values = self._advice_values()
        for variable, variant in ADVICE_VARIABLES:
            await self._show(self._advice[variable], values[variable], variant, t)

    async def _show(self, node: ua.NodeId, value: Any, variant: ua.VariantType, t: float) -> None:
        assert self._server is not None
        datavalue = ua.DataValue(
            ua.Variant(value, variant),
            StatusCode=ua.StatusCode(ua.StatusCodes.Good),
            SourceTimestamp=self.clock.utc(t),
            ServerTimestamp=datetime.now(UTC),
        )
        await self._server.write_attribute_value(node, datavalue)

"""Virtual PLCs: the line's stations as OPC UA objects on asyncua servers.

The address space follows the line: `Objects/<Line>/<Station>/<Variable>`, with
string NodeIds `ns=<namespace of namespace_uri>;s=<Line>.<Station>.<Variable>`. Per
station (see docs/simulated-hardware.md for the state mapping):

- `State` (Int32, the twin's state code), `StateName` (String), `MachineryItemState` and
  `MachineryOperationMode` (UInt32, OPC 40001-1 StateNumbers), `PackMLState` and
  `PackMLUnitMode` (Int32);
- `PartsProduced`, `PartsScrapped` (UInt32, monotonic) and `LastCycleTime` (Double, s);
- `TimeWorking` ... `TimeMaintenance` (Double, machine-seconds per reported state), `Occupancy` (UInt32, parts
  held) and `OccupancySeconds` (Double, monotonic: part-seconds held since the start, exact at
  each refresh), `IdealCycleTime` (Double, s);
- on the first station of a line whose orders are released (not saturated), `PartsReleased`
  (UInt32, monotonic): the orders that entered the line;
- for a station with several machines, `Machine1State`, `Machine2State`, ... (Int32, each
  machine's own state code; `State` shows the most significant of them);
- for what a live twin rebuilds the line's state from (docs/live-twin.md), on every change:
  `BufferLevel` (UInt32, parts waiting in the buffer in front; not on a saturated first
  station), and per machine `Product` (String, the product of the part it holds, "" when
  none) and `PartsStarted` (UInt32, monotonic: parts loaded), named `Machine<k>Product` and
  `Machine<k>PartsStarted` on a station with several machines;
- on a line that is a network (docs/networks.md), the same on every change: an assembly's
  `BufferLevel.<UPSTREAM>` (UInt32, one per input, named after the station that feeds it, in
  place of `BufferLevel`), `ReworkLevel` (UInt32, parts sent back to the station for rework and
  waiting there) and `TransportLevel` (UInt32, parts on the transport into the station,
  travelling or waiting for its buffer) where the station has them;
- one Double per process signal (by default `SpindleSpeed`, `Temperature`, `Power`);
- methods `Start`, `Stop` and `Reset`, for operators only.

`Objects/<Line>/Release` (the release's setpoints) and `Objects/<Line>/Advice` (the approval of the
twin's advice) are built by simulations.hardware.control, on the first server; who may change the
line, over which session security, is simulations.hardware.access.

Every variable whose values the line keeps (all but the process signals) is historizing: the
servers answer HistoryRead for raw values (simulations.hardware.history), so a client that
lost its session reads what changed meanwhile. Every value carries the source timestamp of
its simulated instant (mapped onto wall time) and an explicit Good status code.
`Objects/<Line>` also holds `Speed`, `SimulatedTime` and `LagSeconds`, and on a line with a shift
calendar its shift: `PlannedProduction` (Boolean), as `MachineryItemState` and `PackMLState`, and
`PlannedTime` (Double, planned seconds). One server serves the
line, or one server per station on consecutive ports, the way a real line has a PLC per cell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import Node, Server, ua

from simulations.hardware.access import Access, Caller, PasswordUsers, SessionRules, WriteHandler, install
from simulations.hardware.clock import ScaledClock
from simulations.hardware.config import OpcUaConfig
from simulations.hardware.control import LineControl
from simulations.hardware.history import TimelineHistory
from simulations.hardware.pki import TrustList, server_certificate
from simulations.hardware.runtime import (
    COMMANDS,
    RELEASE_COUNTER,
    TIME_COUNTERS,
    LineRuntime,
    StationRuntime,
)
from simulations.hardware.states import (
    MACHINERY_ITEM_STATE,
    MACHINERY_OPERATION_MODE,
    PACKML_STATE,
    PACKML_UNIT_MODE,
    SHIFT_MACHINERY_ITEM_STATE,
    SHIFT_PACKML_STATE,
    state_name,
)

logger = logging.getLogger(__name__)

POLICIES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256-Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256-SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Aes256_Sha256_RsaPss-Sign": ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    "Aes256_Sha256_RsaPss-SignAndEncrypt": ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
}

# the variables every station has, with their OPC UA type and initial value
STATION_VARIABLES: tuple[tuple[str, ua.VariantType, Any], ...] = (
    ("State", ua.VariantType.Int32, 0),
    ("StateName", ua.VariantType.String, ""),
    ("MachineryItemState", ua.VariantType.UInt32, 0),
    ("MachineryOperationMode", ua.VariantType.UInt32, 0),
    ("PackMLState", ua.VariantType.Int32, 0),
    ("PackMLUnitMode", ua.VariantType.Int32, 0),
    ("PartsProduced", ua.VariantType.UInt32, 0),
    ("PartsScrapped", ua.VariantType.UInt32, 0),
    ("LastCycleTime", ua.VariantType.Double, 0.0),
    *((variable, ua.VariantType.Double, 0.0) for variable, _ in TIME_COUNTERS),
    ("Occupancy", ua.VariantType.UInt32, 0),
    ("OccupancySeconds", ua.VariantType.Double, 0.0),
    ("IdealCycleTime", ua.VariantType.Double, 0.0),
)
# the variables shown from a station's state timeline, and how each shows the state code
STATE_VIEWS: tuple[tuple[str, Any], ...] = (
    ("State", int),
    ("StateName", state_name),
    ("MachineryItemState", MACHINERY_ITEM_STATE.__getitem__),
    ("MachineryOperationMode", MACHINERY_OPERATION_MODE.__getitem__),
    ("PackMLState", PACKML_STATE.__getitem__),
    ("PackMLUnitMode", PACKML_UNIT_MODE.__getitem__),
)
# a line with a shift calendar: the variables of `Objects/<Line>` shown from its shift timeline
# (True in planned production time), with their type and how each shows it
SHIFT_VIEWS: tuple[tuple[str, ua.VariantType, Any], ...] = (
    ("PlannedProduction", ua.VariantType.Boolean, bool),
    ("MachineryItemState", ua.VariantType.UInt32, SHIFT_MACHINERY_ITEM_STATE.__getitem__),
    ("PackMLState", ua.VariantType.Int32, SHIFT_PACKML_STATE.__getitem__),
)
_GOOD = ua.StatusCode(ua.StatusCodes.Good)


class PublishedValue(ua.DataValue):
    """A value the PLC publishes: a new scalar each time, never changed once written.

    asyncua deep-copies every value it hands to a subscription, in case the writer
    changes it afterwards; for these values the copy is the same object, which saves
    most of the server's time per value when a connector subscribes to everything.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> PublishedValue:
        return self


@dataclass
class _StationNodes:
    server: Server
    nodes: dict[str, ua.NodeId]
    types: dict[str, ua.VariantType]  # of the variables the runtime keeps (not the signals)


class VirtualPlcs:
    """The OPC UA servers of a running line; `publish()` writes what the model did since the last call."""

    def __init__(self, runtime: LineRuntime, config: OpcUaConfig, clock: ScaledClock) -> None:
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self.line_name = runtime.line.name
        self.servers: list[Server] = []
        self.endpoints: list[str] = []
        self.namespace_index: list[int] = []
        self._stations: dict[int, _StationNodes] = {}
        self._line_nodes: list[tuple[Server, dict[str, ua.NodeId]]] = []
        self.writes = 0
        self._last_status = float("-inf")
        self.history = TimelineHistory(clock)
        self.access = Access(config.security)
        self.control = LineControl(runtime, self.access, clock)
        self._handlers: list[dict[ua.NodeId, WriteHandler]] = []  # per server: its guarded writes

    # -- building -------------------------------------------------------------------------
    async def start(self) -> None:
        config = self.config
        stations = self.runtime.stations
        groups = [[station] for station in stations] if config.server_per_station else [stations]
        for offset, group in enumerate(groups):
            endpoint = f"opc.tcp://{config.host}:{config.port + offset}"
            server = await self._server(endpoint, group)
            self.servers.append(server)
            self.endpoints.append(endpoint)
        for server, endpoint, handlers in zip(self.servers, self.endpoints, self._handlers, strict=True):
            await server.start()
            install(server, handlers)
            logger.info("virtual PLC listening on %s", endpoint)
        if "None" in config.security.policies:
            logger.warning(
                "virtual PLC %s offers security policy None: anyone on the network can read and write",
                ", ".join(self.endpoints),
            )

    async def _server(self, endpoint: str, stations: list[StationRuntime]) -> Server:
        config = self.config
        security = config.security
        server = Server(user_manager=PasswordUsers(security.users, security.anonymous))  # type: ignore[arg-type]
        await server.init()
        server.iserver.history_manager.set_storage(self.history)
        server.set_endpoint(endpoint)
        name = stations[0].name if config.server_per_station else self.line_name
        server.set_server_name(f"fabbrica simulated PLC {name}")
        await server.set_application_uri(config.application_uri)
        # the rules of a channel whose security is unknown: the weakest (`install` sets them per endpoint)
        server.set_security_policy(
            [POLICIES[policy] for policy in security.policies], permission_ruleset=SessionRules("None")
        )
        tokens: list[type] = []
        if security.anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        if security.users:
            tokens.append(ua.UserNameIdentityToken)
        server.set_identity_tokens(tokens)
        if any(policy != "None" for policy in security.policies) or security.users:
            if security.certificate is not None and security.private_key is not None:
                certificate, key = security.certificate, security.private_key
            else:
                pair = server_certificate(security.pki_dir, config.application_uri)
                certificate, key = pair.certificate, pair.private_key
            await server.load_certificate(str(certificate))
            await server.load_private_key(str(key))
        if security.trusted_certificates is not None:
            server.set_certificate_validator(TrustList(security.trusted_certificates))  # type: ignore[arg-type]

        ns = await server.register_namespace(config.namespace_uri)
        self.namespace_index.append(ns)
        line_id = self.line_name
        line = await server.nodes.objects.add_object(ua.NodeId(line_id, ns), ua.QualifiedName(line_id, ns))
        line_nodes = {}
        doubles = ["Speed", "SimulatedTime", "LagSeconds"]
        if self.runtime.planned_clock is not None:
            doubles.append("PlannedTime")
        for variable in doubles:
            initial = self.clock.speed if variable == "Speed" else 0.0
            node = await line.add_variable(
                ua.NodeId(f"{line_id}.{variable}", ns),
                ua.QualifiedName(variable, ns),
                ua.Variant(float(initial), ua.VariantType.Double),
            )
            line_nodes[variable] = node.nodeid
        if self.runtime.planned_clock is not None:
            await self._shift_nodes(server, line, ns, line_nodes)
        self._line_nodes.append((server, line_nodes))
        # the line's Release and Advice objects: on the (first) server of the line's entry
        self._handlers.append(await self.control.build(server, line, ns) if not self._line_nodes[:-1] else {})

        for station in stations:
            prefix = f"{line_id}.{station.name}"
            obj = await line.add_object(ua.NodeId(prefix, ns), ua.QualifiedName(station.name, ns))
            nodes: dict[str, ua.NodeId] = {}
            initial_values = self._initial_values(station)
            types = {variable: variant for variable, variant, _ in self._variables(station)}
            for variable, variant in types.items():
                node = await obj.add_variable(
                    ua.NodeId(f"{prefix}.{variable}", ns),
                    ua.QualifiedName(variable, ns),
                    ua.Variant(initial_values[variable], variant),
                    varianttype=variant,
                )
                await server.write_attribute_value(
                    node.nodeid, self._datavalue(initial_values[variable], variant, 0.0)
                )
                nodes[variable] = node.nodeid
            for spec in config.signals:
                node = await obj.add_variable(
                    ua.NodeId(f"{prefix}.{spec.name}", ns),
                    ua.QualifiedName(spec.name, ns),
                    ua.Variant(0.0, ua.VariantType.Double),
                    varianttype=ua.VariantType.Double,
                )
                if spec.unit:
                    await node.write_attribute(
                        ua.AttributeIds.Description,
                        ua.DataValue(ua.Variant(ua.LocalizedText(f"{spec.name} [{spec.unit}]"))),
                    )
                nodes[spec.name] = node.nodeid
            for command in COMMANDS:
                method = await obj.add_method(
                    ua.NodeId(f"{prefix}.{command}", ns),
                    ua.QualifiedName(command, ns),
                    self.control.guarded(f"{station.name}.{command}", self._command(station.name, command)),
                    [],
                    [],
                )
                self.control.executable_for_operators(server, method.nodeid)
            self._stations[station.index] = _StationNodes(server, nodes, types)
            await self._historize(server, station, self._stations[station.index])
        return server

    async def _shift_nodes(self, server: Server, line: Node, ns: int, nodes: dict[str, ua.NodeId]) -> None:
        """The line's shift on `Objects/<Line>`: whether it is in planned production time, as a
        Boolean and as an OPC 40001-1 and a PackML state; historizing, from the shift timeline."""
        shift = self.runtime.shift
        planned = shift.entries[-1][1]
        for variable, variant, view in SHIFT_VIEWS:
            node = await line.add_variable(
                ua.NodeId(f"{self.line_name}.{variable}", ns),
                ua.QualifiedName(variable, ns),
                ua.Variant(view(planned), variant),
                varianttype=variant,
            )
            await server.write_attribute_value(node.nodeid, self._datavalue(view(planned), variant, 0.0))
            nodes[variable] = node.nodeid
            self.history.register(node.nodeid, shift, variant, view)
            await _mark_historizing(server, node.nodeid)

    async def _historize(self, server: Server, station: StationRuntime, target: _StationNodes) -> None:
        """Answer HistoryRead for the station's kept values, and say so in the nodes' attributes."""
        nodes, types = target.nodes, target.types
        for variable, view in STATE_VIEWS:
            self.history.register(nodes[variable], station.states, types[variable], view)
        for variable, timeline in station.values.items():
            self.history.register(nodes[variable], timeline, types[variable])
        for node_id in nodes.values():
            if node_id in self.history:
                await _mark_historizing(server, node_id)

    async def restamp(self) -> None:
        """Write the current values again, stamped by the (re)started clock: the values written
        while the servers were being built carry the instant the clock was created."""
        t = self.clock.env.now
        for station in self.runtime.stations:
            target = self._stations[station.index]
            values = self._initial_values(station)
            for variable, variant, _ in self._variables(station):
                await target.server.write_attribute_value(
                    target.nodes[variable], self._datavalue(values[variable], variant, t)
                )
        if self.runtime.planned_clock is not None:
            planned = self.runtime.shift.entries[-1][1]
            for server, nodes in self._line_nodes:
                for variable, variant, view in SHIFT_VIEWS:
                    value = self._datavalue(view(planned), variant, t)
                    await server.write_attribute_value(nodes[variable], value)
        await self.control.restamp()

    @staticmethod
    def _variables(station: StationRuntime) -> list[tuple[str, ua.VariantType, Any]]:
        """The station's variables: those of every station, and one state per machine if it has several."""
        machines = [(name, ua.VariantType.Int32, 0) for name in station.machine_variables]
        released = [(RELEASE_COUNTER, ua.VariantType.UInt32, 0)] if RELEASE_COUNTER in station.values else []
        level = [(name, ua.VariantType.UInt32, 0) for name in station.levels]
        products = [(name, ua.VariantType.String, "") for name in station.product_variables]
        started = [(name, ua.VariantType.UInt32, 0) for name in station.started_variables]
        return [*STATION_VARIABLES, *released, *level, *machines, *products, *started]

    def _initial_values(self, station: StationRuntime) -> dict[str, Any]:
        state = station.state
        values = {name: default for name, _, default in self._variables(station)}
        # what the timelines hold already (a conwip release fills the first buffer while building)
        values.update(
            (name, timeline.entries[-1][1]) for name, timeline in station.values.items() if timeline.entries
        )
        values.update((variable, view(state)) for variable, view in STATE_VIEWS)
        return values

    def _command(self, station: str, command: str) -> Any:
        """A station's method, for an operator (`LineControl.guarded` lets no one else call it)."""
        runtime = self.runtime

        async def call(who: Caller, arguments: list[Any]) -> list[ua.Variant]:
            logger.info("%s.%s called by %s", station, command, who.user)
            runtime.command(station, command, who.user)
            return []

        return call

    def _datavalue(self, value: Any, variant: ua.VariantType, t: float) -> ua.DataValue:
        return PublishedValue(
            ua.Variant(value, variant),
            StatusCode=_GOOD,
            SourceTimestamp=self.clock.utc(t),
            ServerTimestamp=datetime.now(UTC),
        )

    # -- publishing -----------------------------------------------------------------------
    async def publish(self) -> None:
        """Write every value the model produced since the last call, in order, with its timestamp."""
        runtime = self.runtime
        utc = self.clock.utc
        now = datetime.now(UTC)
        writes = 0
        for station in runtime.stations:
            target = self._stations[station.index]
            write = target.server.write_attribute_value
            nodes, types = target.nodes, target.types
            for t, state in station.states.take():
                ts = utc(t)
                for variable, view in STATE_VIEWS:
                    await write(nodes[variable], _value(view(state), types[variable], ts, now))
                    writes += 1
            for variable, timeline in station.values.items():
                variant = types[variable]
                for t, value in timeline.take():
                    await write(nodes[variable], _value(value, variant, utc(t), now))
                    writes += 1
        if runtime.planned_clock is not None:
            writes += await self._publish_shift(now)
        samples = runtime.signal_samples
        if samples:
            double = ua.VariantType.Double
            for sample in samples:
                target = self._stations[sample.station.index]
                write = target.server.write_attribute_value
                nodes = target.nodes
                ts = utc(sample.t)
                for name, value in zip(sample.names, sample.values.tolist(), strict=True):
                    await write(nodes[name], _value(value, double, ts, now))
                writes += len(sample.names)
            samples.clear()
        self.writes += writes
        await self._line_status()

    async def _publish_shift(self, now: datetime) -> int:
        """Write the changes of the line's shift (planned production or not) to every server."""
        changes = self.runtime.shift.take()
        writes = 0
        for t, planned in changes:
            ts = self.clock.utc(t)
            for server, nodes in self._line_nodes:
                for variable, variant, view in SHIFT_VIEWS:
                    value = _value(view(planned), variant, ts, now)
                    await server.write_attribute_value(nodes[variable], value)
                    writes += 1
        return writes

    async def _line_status(self) -> None:
        """Refresh SimulatedTime and LagSeconds on `Objects/<Line>` about once per wall second."""
        clock = self.clock
        wall = clock.epoch(clock.env.now)
        if wall - self._last_status < 1.0:
            return
        self._last_status = wall
        now = datetime.now(UTC)
        ts = clock.utc(clock.env.now)
        double = ua.VariantType.Double
        for server, nodes in self._line_nodes:
            await server.write_attribute_value(
                nodes["SimulatedTime"], _value(float(clock.env.now), double, ts, now)
            )
            await server.write_attribute_value(nodes["LagSeconds"], _value(clock.lag.last_s, double, ts, now))
            if "PlannedTime" in nodes:
                planned = float(self.runtime.env.now)  # the engine runs in planned time
                await server.write_attribute_value(nodes["PlannedTime"], _value(planned, double, ts, now))

    async def stop(self) -> None:
        for server in self.servers:
            try:
                await server.stop()
            except Exception:  # a server that failed half-way through start still has to let go of the others
                logger.exception("stopping the OPC UA server failed")
        self.servers.clear()


async def _mark_historizing(server: Server, node_id: ua.NodeId) -> None:
    """Say in the node's attributes that it answers HistoryRead."""
    access = ua.DataValue(
        ua.Variant(ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask, ua.VariantType.Byte)
    )
    await server.write_attribute_value(node_id, access, ua.AttributeIds.AccessLevel)
    await server.write_attribute_value(node_id, access, ua.AttributeIds.UserAccessLevel)
    historizing = ua.DataValue(ua.Variant(True, ua.VariantType.Boolean))
    await server.write_attribute_value(node_id, historizing, ua.AttributeIds.Historizing)


def _value(value: Any, variant: ua.VariantType, source: datetime, server: datetime) -> ua.DataValue:
    return PublishedValue(
        ua.Variant(value, variant), StatusCode=_GOOD, SourceTimestamp=source, ServerTimestamp=server
    )

"""The line accepts setpoints over OPC UA: who may write what, over which session, and what it does.

Two served lines (an interarrival and a CONWIP release), each in a thread of its own with
real asyncua servers, and real asyncua clients with the session's certificate and user: an
operator over Basic256Sha256 and Aes256_Sha256_RsaPss SignAndEncrypt changes the release and the
line follows (orders exactly the new mean apart, none while held, a raised CONWIP limit filled at
once); outside the limits, anonymous, read-only and unsigned writes are refused with their status
codes, logged, kept in the truth and leave the line as it was; the approval of an advice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from asyncua import Client, Node, ua
from asyncua.crypto.security_policies import SecurityPolicyAes256Sha256RsaPss, SecurityPolicyBasic256Sha256

from simulations.hardware.config import HardwareConfig, HardwareError, load_hardware, setpoint_limits
from simulations.hardware.serve import ServedLine, serve
from tests.hardware.conftest import Pki, free_port
from twin.line import Line, line_from_dict

NAMESPACE = "urn:fabbrica:pilot-line"
PASSWORD = "s3cret-Passw0rd"
OPERATOR, VIEWER, TWIN = "operator", "viewer", "twin-service"
SPEED = 50.0
T = TypeVar("T")

# orders exactly every 20 s into two fast stations: the release is the only thing that sets the pace
INTERARRIVAL_LINE: dict[str, Any] = {
    "name": "pilot",
    "release": {"interarrival": {"dist": "constant", "value": 20}},
    "seed": 3,
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "constant", "value": 5}},
        {"name": "weld", "cycle_time": {"dist": "constant", "value": 6}, "buffer": 4},
    ],
}
CONWIP_LINE: dict[str, Any] = {**INTERARRIVAL_LINE, "name": "cell", "release": {"conwip": 3}}


class LineInThread:
    """`serve` in a thread with its own event loop, so that a test's clients run beside it."""

    def __init__(self, line: Line, config: HardwareConfig) -> None:
        self.line, self.config = line, config
        self.ready = threading.Event()
        self.served: ServedLine | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(60):
            raise AssertionError(f"the line did not start: {self.error!r}")

    def _run(self) -> None:
        async def run() -> None:
            self.loop = asyncio.get_running_loop()

            def on_ready(served: ServedLine) -> None:
                self.served = served
                self.ready.set()

            await serve(self.line, self.config, on_ready=on_ready, handle_signals=False)

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
            self.ready.set()

    def on_loop(self, read: Callable[[ServedLine], T]) -> T:
        """`read(served)` on the line's own loop, between two of its steps."""
        assert self.loop is not None and self.served is not None
        served = self.served

        async def call() -> T:
            return read(served)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def truth(self) -> dict[str, Any]:
        return self.on_loop(lambda served: served.truth())

    def endpoint(self) -> str:
        return self.on_loop(lambda served: served.endpoints[0])

    def stop(self) -> None:
        if self.loop is not None and self.served is not None:
            self.loop.call_soon_threadsafe(self.served.stop.set)
        self.thread.join(30)


def _hardware(folder: Path, pki: Pki, setpoints: dict[str, Any]) -> HardwareConfig:
    return HardwareConfig.model_validate(
        {
            "speed": SPEED,
            "opcua": {
                "endpoint": f"opc.tcp://127.0.0.1:{free_port()}",
                "linger": 0,
                "security": {
                    "policies": [
                        "None",
                        "Basic256Sha256-Sign",
                        "Basic256Sha256-SignAndEncrypt",
                        "Aes256_Sha256_RsaPss-SignAndEncrypt",
                    ],
                    "pki_dir": str(folder / "server-pki"),
                    "users": {OPERATOR: PASSWORD, VIEWER: PASSWORD, TWIN: PASSWORD},
                    "operators": [OPERATOR, TWIN],
                    "allow_anonymous": True,
                    "trusted_certificates": str(pki.trusted),
                    # write_security: Sign, the default
                },
                "setpoints": setpoints,
            },
            "mqtt": {"enabled": False},
        }
    )


@pytest.fixture(scope="module")
def interarrival(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[LineInThread]:
    limits = {"release.interarrival.mean": {"low": 10, "high": 80}}
    line = LineInThread(
        line_from_dict(INTERARRIVAL_LINE), _hardware(tmp_path_factory.mktemp("ia"), pki, limits)
    )
    yield line
    line.stop()


@pytest.fixture(scope="module")
def conwip(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[LineInThread]:
    # no limits in the hardware file: Limits.default(line)
    line = LineInThread(line_from_dict(CONWIP_LINE), _hardware(tmp_path_factory.mktemp("conwip"), pki, {}))
    yield line
    line.stop()


POLICIES = {
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}


@contextlib.asynccontextmanager
async def _session(
    endpoint: str,
    pki: Pki,
    user: str | None,
    policy: str | None = "Basic256Sha256",
    mode: ua.MessageSecurityMode = ua.MessageSecurityMode.SignAndEncrypt,
) -> AsyncIterator[Client]:
    client = Client(endpoint, timeout=10)
    client.application_uri = pki.client_uri
    if user is not None:
        client.set_user(user)
        client.set_password(PASSWORD)
    if policy is not None:
        await client.set_security(
            POLICIES[policy],
            certificate=str(pki.client.certificate),
            private_key=str(pki.client.private_key),
            mode=mode,
        )
    async with client:
        yield client


async def _child(client: Client, line: str, *path: str) -> Node:
    ns = await client.get_namespace_index(NAMESPACE)
    return await client.nodes.objects.get_child([f"{ns}:{line}", *(f"{ns}:{name}" for name in path)])


def _write(
    endpoint: str, pki: Pki, user: str | None, line: str, variable: str, value: ua.Variant, **session: Any
) -> str:
    """Write `value` to `Objects/<line>/Release/<variable>`; the status code's name."""

    async def write() -> str:
        async with _session(endpoint, pki, user, **session) as client:
            node = await _child(client, line, "Release", variable)
            try:
                await node.write_value(value)
            except ua.UaStatusCodeError as exc:
                return type(exc).__name__
            return "Good"

    return asyncio.run(write())


def _released(truth: dict[str, Any]) -> list[tuple[float, int]]:
    """(t, orders released so far) at each change, from the first station's PartsReleased."""
    first = next(iter(truth["stations"].values()))
    return [(entry["t"], entry["value"]) for entry in first["values"]["PartsReleased"]]


def _wait(line: LineInThread, seconds: float) -> None:
    """Let the line run `seconds` of its own time."""
    start = line.on_loop(lambda served: served.runtime.now)
    while line.on_loop(lambda served: served.runtime.now) < start + seconds:
        time.sleep(0.05)


@pytest.mark.parametrize("policy", ["Basic256Sha256", "Aes256_Sha256_RsaPss"])
def test_an_operator_sets_the_interarrival_mean_and_the_orders_follow(
    interarrival: LineInThread, pki: Pki, policy: str
) -> None:
    mean = {"Basic256Sha256": 40.0, "Aes256_Sha256_RsaPss": 30.0}[policy]
    endpoint = interarrival.endpoint()

    async def scenario() -> dict[str, Any]:
        async with _session(endpoint, pki, OPERATOR, policy) as client:
            node = await _child(client, "pilot", "Release", "InterarrivalMean")
            seen = {
                "range": await (await node.get_child("0:EURange")).read_value(),
                "type": await node.read_type_definition(),
                "access": (await node.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value,
            }
            await node.write_value(mean)
            seen["value"] = await node.read_value()
            return seen

    seen = asyncio.run(scenario())
    assert seen["value"] == mean
    assert (seen["range"].Low, seen["range"].High) == (10.0, 80.0), "the hardware file's limits"
    assert seen["type"] == ua.NodeId(ua.ObjectIds.AnalogItemType)
    assert seen["access"] & ua.AccessLevel.CurrentWrite.mask, "an operator may write"
    assert interarrival.on_loop(lambda served: served.runtime.model.release_control.interarrival_mean) == mean
    _wait(interarrival, 3 * mean + 25)
    truth = interarrival.truth()
    change = truth["setpoints"]["changes"][-1]
    assert (change["path"], change["value"], change["user"]) == ("release.interarrival.mean", mean, OPERATOR)
    after = [t for t, _ in _released(truth) if t > change["t"]]
    assert len(after) >= 3
    # the interval drawn before the change runs out; from then on the orders are exactly `mean` apart
    assert [b - a for a, b in itertools.pairwise(after)] == pytest.approx([mean] * (len(after) - 1))


def test_hold_stops_the_orders_and_resuming_lets_them_in(interarrival: LineInThread, pki: Pki) -> None:
    endpoint = interarrival.endpoint()
    assert (
        _write(endpoint, pki, OPERATOR, "pilot", "Hold", ua.Variant(True, ua.VariantType.Boolean)) == "Good"
    )
    assert interarrival.on_loop(lambda served: served.runtime.model.release_control.held)
    mean = interarrival.on_loop(lambda served: served.runtime.setpoints["release.interarrival.mean"])
    _wait(interarrival, 2 * mean + 5)
    truth = interarrival.truth()
    held = truth["setpoints"]["changes"][-1]
    assert (held["path"], held["value"], held["user"]) == ("release.hold", True, OPERATOR)
    assert [t for t, _ in _released(truth) if t > held["t"]] == [], "no order enters while held"

    assert (
        _write(endpoint, pki, OPERATOR, "pilot", "Hold", ua.Variant(False, ua.VariantType.Boolean)) == "Good"
    )
    _wait(interarrival, mean + 5)
    truth = interarrival.truth()
    resumed = truth["setpoints"]["changes"][-1]
    after = [t for t, _ in _released(truth) if t > resumed["t"]]
    assert after and after[0] == pytest.approx(resumed["t"] + mean), "a fresh interval from the resume"


def test_an_operator_raises_the_conwip_limit_and_the_line_fills_at_once(
    conwip: LineInThread, pki: Pki
) -> None:
    endpoint = conwip.endpoint()
    assert (
        _write(endpoint, pki, OPERATOR, "cell", "ConwipLimit", ua.Variant(6, ua.VariantType.UInt32)) == "Good"
    )
    assert conwip.on_loop(lambda served: served.runtime.model.conwip_limit) == 6
    truth = conwip.truth()
    change = truth["setpoints"]["changes"][-1]
    assert (change["path"], change["value"], change["user"]) == ("release.conwip", 6, OPERATOR)
    released = dict(_released(truth))
    before = max(n for t, n in released.items() if t < change["t"])
    assert released[change["t"]] == before + 3, "three more orders enter at the instant of the write"
    assert truth["setpoints"]["limits"] == {"release.conwip": [1, 12]}, "Limits.default: 1 to 4 x the file's"
    # above the default limits: refused
    assert _write(endpoint, pki, OPERATOR, "cell", "ConwipLimit", ua.Variant(13, ua.VariantType.UInt32)) == (
        "BadOutOfRange"
    )
    assert conwip.on_loop(lambda served: served.runtime.model.conwip_limit) == 6


REFUSALS = {
    "outside the limits": (OPERATOR, {}, 500.0, "BadOutOfRange"),
    "anonymous": (None, {}, 50.0, "BadUserAccessDenied"),
    "read-only user": (VIEWER, {}, 50.0, "BadUserAccessDenied"),
    "unsigned session": (OPERATOR, {"policy": None}, 50.0, "BadSecurityModeInsufficient"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_write_is_logged_kept_in_the_truth_and_leaves_the_line_unchanged(
    interarrival: LineInThread, pki: Pki, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    user, session, value, status = REFUSALS[case]
    endpoint = interarrival.endpoint()

    def state(served: ServedLine) -> tuple[Any, ...]:
        runtime = served.runtime
        return (
            runtime.model.release_control.interarrival_mean,
            dict(runtime.setpoints),
            len(runtime.setpoint_changes),
        )

    before = interarrival.on_loop(state)
    with caplog.at_level("WARNING", logger="simulations.hardware.control"):
        answer = _write(
            endpoint,
            pki,
            user,
            "pilot",
            "InterarrivalMean",
            ua.Variant(value, ua.VariantType.Double),
            **session,
        )
    assert answer == status
    assert interarrival.on_loop(state) == before, "the line is unchanged"
    refused = interarrival.truth()["refused"][-1]
    assert (refused["target"], refused["value"], refused["user"], refused["status"]) == (
        "Release.InterarrivalMean",
        value,
        user,
        status,
    )
    assert refused["reason"] and refused["ts"].endswith("Z")
    assert any(
        status in record.getMessage() and "Release.InterarrivalMean" in record.getMessage()
        for record in caplog.records
    )


def test_a_read_only_user_can_neither_stop_a_station_nor_see_write_access(
    interarrival: LineInThread, pki: Pki
) -> None:
    endpoint = interarrival.endpoint()

    async def scenario() -> tuple[str, int, bool]:
        async with _session(endpoint, pki, VIEWER) as client:
            access = (
                await (await _child(client, "pilot", "Release", "Hold")).read_attribute(
                    ua.AttributeIds.UserAccessLevel
                )
            ).Value.Value
            stop = await _child(client, "pilot", "cut", "Stop")
            executable = (await stop.read_attribute(ua.AttributeIds.UserExecutable)).Value.Value
            try:
                await (await _child(client, "pilot", "cut")).call_method(stop)
            except ua.UaStatusCodeError as exc:
                return type(exc).__name__, access, executable
            return "Good", access, executable

    answer, access, executable = asyncio.run(scenario())
    assert answer == "BadUserAccessDenied"
    assert access == ua.AccessLevel.CurrentRead.mask and executable is False
    truth = interarrival.truth()
    assert truth["stations"]["cut"]["commands"] == [] and truth["stations"]["cut"]["state"] != "stopped"
    assert truth["refused"][-1]["target"] == "cut.Stop" and truth["refused"][-1]["user"] == VIEWER


def test_the_twin_proposes_an_operator_approves_and_the_write_applies_it(
    interarrival: LineInThread, pki: Pki
) -> None:
    endpoint = interarrival.endpoint()
    proposal = {"action": {"release.interarrival.mean": 25.0}, "gain": {"mean": 1.5, "ci95": 0.4}}

    async def status(client: Client) -> tuple[str, int, str]:
        advice = await _child(client, "pilot", "Advice")
        ns = await client.get_namespace_index(NAMESPACE)
        values = [
            await (await advice.get_child(f"{ns}:{name}")).read_value()
            for name in ("Status", "ProposalId", "DecidedBy")
        ]
        return tuple(values)  # type: ignore[return-value]

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with (
            _session(endpoint, pki, TWIN) as twin,
            _session(endpoint, pki, OPERATOR, "Aes256_Sha256_RsaPss") as operator,
            _session(endpoint, pki, VIEWER) as viewer,
        ):
            ns = await twin.get_namespace_index(NAMESPACE)
            advice = await _child(twin, "pilot", "Advice")
            proposal_id = await advice.call_method(
                f"{ns}:Propose", ua.Variant(json.dumps(proposal), ua.VariantType.String)
            )
            seen["id"] = proposal_id
            seen["proposed"] = await status(operator)
            seen["proposal"] = json.loads(await (await advice.get_child(f"{ns}:Proposal")).read_value())
            try:
                await (await _child(viewer, "pilot", "Advice")).call_method(
                    f"{ns}:Reject", ua.Variant(proposal_id, ua.VariantType.UInt32)
                )
                seen["reject"] = "Good"
            except ua.UaStatusCodeError as exc:
                seen["reject"] = type(exc).__name__
            seen["after_reject"] = await status(operator)
            await (await _child(operator, "pilot", "Advice")).call_method(
                f"{ns}:Approve", ua.Variant(proposal_id, ua.VariantType.UInt32)
            )
            seen["approved"] = await status(twin)
            await (await _child(twin, "pilot", "Release", "InterarrivalMean")).write_value(25.0)
            seen["applied"] = await status(viewer)
        return seen

    seen = asyncio.run(scenario())
    proposal_id = seen["id"]
    assert seen["proposed"] == ("pending", proposal_id, "")
    assert seen["proposal"] == proposal
    assert seen["reject"] == "BadUserAccessDenied" and seen["after_reject"] == ("pending", proposal_id, "")
    assert seen["approved"] == ("approved", proposal_id, OPERATOR)
    assert seen["applied"] == ("applied", proposal_id, OPERATOR)
    truth = interarrival.truth()
    steps = [(event["event"], event["user"]) for event in truth["advice"] if event["id"] == proposal_id]
    assert steps == [("proposed", TWIN), ("approved", OPERATOR), ("applied", TWIN)]
    assert truth["refused"][-1]["target"] == "Advice.Reject" and truth["refused"][-1]["user"] == VIEWER


def test_limits_and_operators_in_the_hardware_file_are_checked_naming_the_field(tmp_path: Path) -> None:
    def error(data: dict[str, Any]) -> str:
        path = tmp_path / "hardware.yaml"
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(HardwareError) as raised:
            load_hardware(path)
        return str(raised.value)

    assert "opcua.setpoints.release.hold: no setpoint with limits" in error(
        {"opcua": {"setpoints": {"release.hold": {"low": 0}}}}
    )
    assert "opcua.setpoints.release.conwip.high: must be >= low" in error(
        {"opcua": {"setpoints": {"release.conwip": {"low": 5, "high": 2}}}}
    )
    assert "opcua.security.operators[0]: 'boss' is not one of the users" in error(
        {"opcua": {"security": {"users": {"op": "x"}, "operators": ["boss"]}}}
    )
    assert "opcua.security.write_security: must be" in error(
        {"opcua": {"security": {"write_security": "Encrypt"}}}
    )
    config = HardwareConfig.model_validate({"opcua": {"setpoints": {"release.conwip": {"high": 8}}}})
    with pytest.raises(
        HardwareError, match=r"opcua.setpoints.release.conwip: the line 'pilot' has no such setpoint"
    ):
        setpoint_limits(line_from_dict(INTERARRIVAL_LINE), config.opcua)
    assert setpoint_limits(line_from_dict(CONWIP_LINE), config.opcua).bounds == {"release.conwip": (1, 8)}

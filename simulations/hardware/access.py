"""Who may change the line through its virtual PLCs, and over which session security.

Everyone logged in reads; only an operator (a user the hardware file lists in
`opcua.security.operators`) changes the line, and only over a session whose message security
is at least `opcua.security.write_security`; an anonymous session never changes anything.

asyncua hands neither a method nor a write of a variable the session it came in on. What it does
call for every request is the permission ruleset of the request's secure channel, with the
session's user: `SessionRules` keeps that user and the channel's security mode for the rest of
the request (a context variable: the request is served in the connection's task), and
`GuardedWrites`, the server's attribute service, and the PLC's methods ask `caller()` who is
calling. One ruleset per endpoint's security mode is handed to the server's policy factories
once it has built them (`install`); a request with no caller known is refused, never trusted.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.server.address_space import AttributeService

from simulations.hardware.config import SECURITY_MODES, OpcUaSecurity, SecurityMode

logger = logging.getLogger(__name__)

# ua.MessageSecurityMode -> our names (None_ 1, Sign 2, SignAndEncrypt 3)
_MODES: dict[ua.MessageSecurityMode, SecurityMode] = {
    ua.MessageSecurityMode.None_: "None",
    ua.MessageSecurityMode.Sign: "Sign",
    ua.MessageSecurityMode.SignAndEncrypt: "SignAndEncrypt",
}


@dataclass(frozen=True)
class Caller:
    """Who sent the request being served: the user's name (None: anonymous) and the session's security."""

    user: str | None
    mode: SecurityMode


_CALLER: ContextVar[Caller | None] = ContextVar("fabbrica_plc_caller", default=None)


def caller() -> Caller | None:
    """The caller of the request being served; None outside a client's request."""
    return _CALLER.get()


@dataclass(frozen=True)
class Refusal:
    """Why a change is refused: an OPC UA status code name and a reason in words."""

    status: str
    reason: str

    @property
    def code(self) -> ua.StatusCode:
        return ua.StatusCode(getattr(ua.StatusCodes, self.status))


class Access:
    """The rule: who may change the line, over which session security."""

    def __init__(self, security: OpcUaSecurity) -> None:
        self.operators = frozenset(security.operators)
        self.write_security: SecurityMode = security.write_security

    def refusal(self, who: Caller | None) -> Refusal | None:
        """Why `who` may not change the line, or None if it may."""
        if who is None:
            return Refusal("BadUserAccessDenied", "no client session")
        if who.user is None:
            return Refusal("BadUserAccessDenied", "an anonymous session cannot change the line")
        if who.user not in self.operators:
            return Refusal("BadUserAccessDenied", f"user {who.user!r} does not have the operator role")
        if SECURITY_MODES.index(who.mode) < SECURITY_MODES.index(self.write_security):
            return Refusal(
                "BadSecurityModeInsufficient",
                f"a change needs security {self.write_security} or better, the session has {who.mode}",
            )
        return None

    def may_change(self) -> bool:
        return self.refusal(caller()) is None


class PasswordUsers:
    """asyncua user manager: the configured users by password, and anonymous sessions if allowed.

    Every session gets asyncua's role `User` (read, browse, subscribe, call); never `Admin`, which
    would let a client add and delete nodes and write any attribute. The operator role is the
    user's name in `Access.operators`, checked per change.
    """

    def __init__(self, users: dict[str, str], anonymous: bool) -> None:
        self.users = users
        self.anonymous = anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: Any = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self.anonymous else None
        expected = self.users.get(username)
        given = password.decode("utf-8", "replace") if isinstance(password, bytes) else (password or "")
        if expected is not None and hmac.compare_digest(expected.encode(), given.encode()):
            return User(role=UserRole.User, name=username)
        logger.warning("refused user %r: unknown user or wrong password", username)
        return None


class SessionRules(SimpleRoleRuleset):
    """asyncua's role rules, which also note who sends each request over a channel of `mode`."""

    def __init__(self, mode: SecurityMode) -> None:
        super().__init__()
        self.mode = mode

    def check_validity(self, user: User, action_type_id: Any, body: Any) -> bool:
        _CALLER.set(Caller(user.name, self.mode))
        return bool(super().check_validity(user, action_type_id, body))


WriteHandler = Callable[[ua.WriteValue, Caller | None], Awaitable[ua.StatusCode]]


class GuardedWrites(AttributeService):
    """The server's attribute service: writes of the nodes in `handlers` go to their handler, which
    decides (and says why with the status code); every other write goes as asyncua decides."""

    def __init__(self, original: AttributeService, handlers: dict[ua.NodeId, WriteHandler]) -> None:
        super().__init__(original._aspace)
        self.handlers = handlers

    async def write(
        self, params: ua.WriteParameters, user: User = User(role=UserRole.Admin)
    ) -> list[ua.StatusCode]:
        results: list[ua.StatusCode | None] = []
        rest = []
        for item in params.NodesToWrite:
            handler = self.handlers.get(item.NodeId)
            if handler is None:
                results.append(None)
                rest.append(item)
            elif item.AttributeId != ua.AttributeIds.Value:
                results.append(ua.StatusCode(ua.StatusCodes.BadNotWritable))
            else:
                results.append(await handler(item, caller()))
        if rest:
            others = iter(await super().write(ua.WriteParameters(NodesToWrite=rest), user))
            results = [next(others) if result is None else result for result in results]
        return results  # type: ignore[return-value]


def user_access_level(access: Access) -> Callable[[ua.NodeId, ua.AttributeIds], ua.DataValue]:
    """A setpoint's UserAccessLevel as its caller sees it: read and write for who may change it."""
    read = ua.AccessLevel.CurrentRead.mask
    write = read | ua.AccessLevel.CurrentWrite.mask

    def level(node_id: ua.NodeId, attribute: ua.AttributeIds) -> ua.DataValue:
        return ua.DataValue(ua.Variant(write if access.may_change() else read, ua.VariantType.Byte))

    return level


def user_executable(access: Access) -> Callable[[ua.NodeId, ua.AttributeIds], ua.DataValue]:
    """A method's UserExecutable as its caller sees it: true for who may change the line."""

    def executable(node_id: ua.NodeId, attribute: ua.AttributeIds) -> ua.DataValue:
        return ua.DataValue(ua.Variant(access.may_change(), ua.VariantType.Boolean))

    return executable


def install(server: Server, handlers: dict[ua.NodeId, WriteHandler]) -> None:
    """After `server.start()`: one `SessionRules` per endpoint's security mode, and the guarded writes.

    The policy factories exist once the server has started (asyncua builds them from
    `set_security_policy` then); each secure channel takes its factory's ruleset when it opens.
    """
    factories = getattr(server, "_policies", None)
    if not factories:
        raise RuntimeError("asyncua's server has no security policy factories: cannot tell sessions apart")
    for factory in factories:
        factory.permission_ruleset = SessionRules(_MODES[factory.mode])
    iserver = server.iserver
    iserver.attribute_service = GuardedWrites(iserver.attribute_service, handlers)

"""What the simulated hardware looks like: PLC endpoints and security, sensors, signals, speed.

One validated model, `HardwareConfig`, read from an optional YAML file
(`fabbrica line serve --hardware hw.yaml`); command-line options override its fields.
Unknown keys are errors naming the field, as for line files. Every field has a default,
so an empty file (or none) gives one OPC UA server on opc.tcp://127.0.0.1:4840 with
the three default process signals per station, and an MQTT publisher on
mqtt://127.0.0.1:1883 with three sensors per station under the prefix `factory`.

    >>> config = HardwareConfig.model_validate({"speed": 60, "mqtt": {"prefix": "plant"}})
    >>> config.opcua.endpoint
    'opc.tcp://127.0.0.1:4840'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from connectors.common.secrets import EnvError, hide_in_logs, substitute
from foundation.durations import Duration
from foundation.errors import FieldError, InputError, validation_message
from foundation.models import Strict
from foundation.yamlfile import read_mapping
from twin.line import Line
from twin.setpoints import SETPOINTS, Limits, available
from twin.station import STATE_NAMES, StateName

SecurityPolicy = Literal[
    "None",
    "Basic256Sha256-Sign",
    "Basic256Sha256-SignAndEncrypt",
    "Aes256_Sha256_RsaPss-Sign",
    "Aes256_Sha256_RsaPss-SignAndEncrypt",
]
ALL_POLICIES: tuple[SecurityPolicy, ...] = (
    "None",
    "Basic256Sha256-Sign",
    "Basic256Sha256-SignAndEncrypt",
    "Aes256_Sha256_RsaPss-Sign",
    "Aes256_Sha256_RsaPss-SignAndEncrypt",
)
# what a PLC offers when the hardware file does not say
DEFAULT_POLICIES: tuple[SecurityPolicy, ...] = ALL_POLICIES[:3]
# the message security of a session, weakest first: what `write_security` may demand
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]
SECURITY_MODES: tuple[SecurityMode, ...] = ("None", "Sign", "SignAndEncrypt")
# the setpoints that take engineering limits (the numeric ones: not `release.hold`)
LIMITED_SETPOINTS = tuple(path for path, setpoint in SETPOINTS.items() if setpoint.kind is not bool)


class HardwareError(InputError):
    """A hardware file (or a hardware option) is invalid: one line naming file and field."""


class SignalSpec(Strict):
    """One process signal or sensor of a station: its level in each machine state, noise and dynamics.

    The signal follows its state's level with a first-order lag of time constant `tau`
    (simulated seconds; 0: at once) and is measured with Gaussian noise of standard
    deviation `noise` (or `noise_levels[state]`: a stopped spindle reads a steady 0,
    a working one jitters). `integrate: true` publishes the running integral per hour
    instead (an energy meter in kWh from levels in kW). Each station's levels are
    scaled once, at start, by a factor drawn around 1 with relative spread `spread`.
    `rate` is in samples per wall-clock second, whatever the speed. With `line_power`, on a
    station whose line file gives `power:`, the signal follows the station's power (the line's
    kW in each machine's state, summed over its machines, unscaled) instead of `levels`: so the
    energy meter counts the twin's energy.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    unit: str = ""
    levels: dict[StateName, float] = Field(default_factory=dict)
    idle: float = 0.0
    noise: float = Field(default=0.0, ge=0)
    noise_levels: dict[StateName, float] = Field(default_factory=dict)
    tau: Duration = 0.0
    integrate: bool = False
    floor: float | None = 0.0
    spread: float = Field(default=0.05, ge=0, lt=1)
    rate: float = Field(default=1.0, gt=0, le=1000)
    qos: int = Field(default=1, ge=0, le=2)
    line_power: bool = False

    def level_table(self) -> list[float]:
        """The level in each twin state code (twin.station order)."""
        return [self.levels.get(name, self.idle) for name in STATE_NAMES]

    def noise_table(self) -> list[float]:
        """The noise's standard deviation in each twin state code."""
        return [self.noise_levels.get(name, self.noise) for name in STATE_NAMES]

    @field_validator("noise_levels")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for state, sd in value.items():
            if sd < 0:
                raise ValueError(f"{state}: must be >= 0, got {sd!r}")
        return value


DEFAULT_SIGNALS = (
    SignalSpec(
        name="SpindleSpeed",
        unit="rpm",
        levels={"working": 12000.0, "setup": 600.0},
        noise_levels={"working": 30.0, "setup": 8.0},
        tau=1.5,
        rate=1.0,
    ),
    SignalSpec(
        name="Temperature",
        unit="degC",
        levels={"working": 46.0, "setup": 36.0, "blocked": 33.0, "starved": 33.0},
        idle=29.0,
        noise=0.15,
        tau=300.0,
        rate=1.0,
    ),
    SignalSpec(
        name="Power",
        unit="kW",
        levels={"working": 7.5, "setup": 2.4, "blocked": 1.3, "starved": 1.3, "down": 0.5},
        idle=0.3,
        noise=0.12,
        tau=1.0,
        rate=1.0,
        line_power=True,
    ),
)

DEFAULT_SENSORS = (
    SignalSpec(
        name="energy",
        unit="kWh",
        levels={"working": 7.5, "setup": 2.4, "blocked": 1.3, "starved": 1.3, "down": 0.5},
        idle=0.3,
        tau=1.0,
        integrate=True,
        rate=1.0,
        line_power=True,
    ),
    SignalSpec(
        name="vibration",
        unit="mm/s",
        levels={"working": 4.2, "setup": 1.1, "blocked": 0.4, "starved": 0.4, "down": 0.1},
        idle=0.1,
        noise=0.04,
        noise_levels={"working": 0.35, "setup": 0.15},
        tau=0.5,
        rate=1.0,
    ),
    SignalSpec(name="ambient", unit="degC", idle=22.5, noise=0.08, spread=0.02, rate=0.2),
)


class OpcUaSecurity(Strict):
    """Security of the virtual PLCs, as on real ones.

    `policies` lists the endpoints offered (any of `ALL_POLICIES`; by default None and
    Basic256Sha256 Sign and SignAndEncrypt); offering None is logged as a warning at
    start. Without `certificate`/`private_key`, a self-signed server certificate is
    created in `pki_dir` on first start and reused afterwards. `users` maps user names
    to passwords; anonymous sessions are allowed unless users are configured (or
    `allow_anonymous` says otherwise). With
    `trusted_certificates` (a folder of DER or PEM files), only client certificates
    found there, or issued by one found there, are accepted; without it, any.

    Only the `operators` (names from `users`) may change the line: write a setpoint, call a
    station's Start/Stop/Reset, propose, approve or reject an advice; everyone else reads, and
    an anonymous session never changes anything. A change also needs a session whose message
    security is at least `write_security` (`Sign` by default: never over an unsecured session).
    """

    policies: list[SecurityPolicy] = Field(default_factory=lambda: list(DEFAULT_POLICIES), min_length=1)
    certificate: Path | None = None
    private_key: Path | None = None
    pki_dir: Path = Field(default_factory=lambda: default_pki_dir())
    users: dict[str, str] = Field(default_factory=dict)
    allow_anonymous: bool | None = None
    trusted_certificates: Path | None = None
    operators: list[str] = Field(default_factory=list)
    write_security: SecurityMode = "Sign"

    @field_validator("policies")
    @classmethod
    def _once(cls, value: list[SecurityPolicy]) -> list[SecurityPolicy]:
        for policy in value:
            if value.count(policy) > 1:
                raise ValueError(f"{policy} is listed twice")
        return value

    @model_validator(mode="after")
    def _pair(self) -> OpcUaSecurity:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("give both certificate and private_key, or neither")
        if not self.anonymous and not self.users:
            raise ValueError("no way to log in: give users, or allow anonymous sessions")
        for index, name in enumerate(self.operators):
            if name not in self.users:
                raise FieldError(f"operators[{index}]", f"{name!r} is not one of the users")
        return self

    @property
    def anonymous(self) -> bool:
        return not self.users if self.allow_anonymous is None else self.allow_anonymous


class SetpointLimits(Strict):
    """Engineering limits of one setpoint, both included; a side not given keeps the default's."""

    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _order(self) -> SetpointLimits:
        if self.low is not None and self.high is not None and not self.low <= self.high:
            raise FieldError("high", f"must be >= low ({self.low:g}), got {self.high:g}")
        return self


class OpcUaConfig(Strict):
    """The virtual PLCs: one OPC UA server, or one per station on consecutive ports.

    At exit the servers keep serving the final values for `linger` seconds, so that
    subscribers receive the last changes before the connection goes. `setpoints` bounds what
    an operator may write to `Objects/<Line>/Release`, per setpoint path (`twin.setpoints`):
    `{release.interarrival.mean: {low: 20, high: 200}}`; without it, `Limits.default(line)`.
    """

    enabled: bool = True
    endpoint: str = "opc.tcp://127.0.0.1:4840"
    namespace_uri: str = "urn:fabbrica:pilot-line"
    application_uri: str = "urn:fabbrica:simulated-plc"
    server_per_station: bool = False
    linger: Duration = 1.0
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity)
    setpoints: dict[str, SetpointLimits] = Field(default_factory=dict)
    signals: list[SignalSpec] = Field(default_factory=lambda: list(DEFAULT_SIGNALS))

    @field_validator("setpoints")
    @classmethod
    def _setpoint_paths(cls, value: dict[str, SetpointLimits]) -> dict[str, SetpointLimits]:
        for path in value:
            if path not in LIMITED_SETPOINTS:
                raise FieldError(path, f"no setpoint with limits (those are: {', '.join(LIMITED_SETPOINTS)})")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "opc.tcp" or not parts.hostname:
            raise ValueError(f"must be opc.tcp://HOST:PORT, got {value!r}")
        try:
            parts.port  # noqa: B018
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value

    @field_validator("signals")
    @classmethod
    def _unique(cls, value: list[SignalSpec]) -> list[SignalSpec]:
        return _unique_names(value)

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port or 4840

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or "127.0.0.1"


class MqttTls(Strict):
    """TLS towards the broker: CA file, optional client certificate, hostname check."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class MqttConfig(Strict):
    """The virtual sensors: one MQTT client publishing every station's sensors and part events.

    At start the line waits up to `connect_timeout` for the broker, then runs anyway;
    at exit the client waits up to `drain_timeout` for the broker's acknowledgements.
    With `truth_readings` every sensor sample handed to the client (its `ts` and value) is kept
    for the truth file, so that a check can compare stored readings with them (memory grows
    with the run: for tests and short runs).
    """

    enabled: bool = True
    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = Field(default="factory", min_length=1)
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    tls: MqttTls | None = None
    keepalive: int = Field(default=30, ge=5)
    events_qos: int = Field(default=1, ge=0, le=2)
    connect_timeout: Duration = 1.0
    drain_timeout: Duration = 5.0
    truth_readings: bool = False
    sensors: list[SignalSpec] = Field(default_factory=lambda: list(DEFAULT_SENSORS))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {value!r}")
        try:
            parts.port  # noqa: B018
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value

    @field_validator("sensors")
    @classmethod
    def _unique(cls, value: list[SignalSpec]) -> list[SignalSpec]:
        return _unique_names(value)

    @property
    def use_tls(self) -> bool:
        return self.tls is not None or urlsplit(self.url).scheme in ("mqtts", "ssl")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.use_tls else 1883)

    @property
    def credentials(self) -> tuple[str | None, str | None]:
        """User name and password from the fields, else from the URL."""
        parts = urlsplit(self.url)
        return self.username or parts.username, self.password or parts.password


class HardwareConfig(Strict):
    """The whole simulated hardware of one line.

    `speed` is simulated seconds per wall second; `tick` the wall time between two
    steps of the clock; `lag_warning` the lag behind wall time that is logged.
    """

    speed: float = Field(default=1.0, gt=0)
    tick: Duration = 0.02
    lag_warning: Duration = 1.0
    opcua: OpcUaConfig = Field(default_factory=OpcUaConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)

    @field_validator("tick")
    @classmethod
    def _tick(cls, value: float) -> float:
        if not 0.001 <= value <= 1.0:
            raise ValueError(f"must be between 1ms and 1s, got {value:g}s")
        return value


def setpoint_limits(line: Line, opcua: OpcUaConfig) -> Limits:
    """The limits of `line`'s setpoints: the hardware file's `opcua.setpoints`, else the defaults.

    A side the file does not give keeps `Limits.default(line)`'s; a setpoint the line does not have
    is an error naming the field.
    """
    bounds = dict(Limits.default(line).bounds)
    for path, given in opcua.setpoints.items():
        if path not in available(line):
            raise HardwareError(
                f"opcua.setpoints.{path}: the line {line.name!r} has no such setpoint (its release)"
            )
        low, high = bounds.get(path, (None, None))
        low = given.low if given.low is not None else low
        high = given.high if given.high is not None else high
        if low is not None and high is not None and low > high:
            raise HardwareError(f"opcua.setpoints.{path}: low ({low:g}) is above high ({high:g})")
        bounds[path] = (low, high)
    return Limits(bounds)


def _unique_names(specs: list[SignalSpec]) -> list[SignalSpec]:
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"duplicate name {name!r}")
    return specs


def default_pki_dir() -> Path:
    """Where the server certificate is created on first start: $XDG_DATA_HOME/fabbrica/pki."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fabbrica" / "pki"


def load_hardware(path: str | Path | None, overrides: dict[str, object] | None = None) -> HardwareConfig:
    """Read and validate a hardware file (None: the defaults); `overrides` are dotted field paths."""
    data: dict[str, object] = (
        read_mapping(path, HardwareError, "a mapping of hardware fields") if path is not None else {}
    )
    secrets: set[str] = set()
    try:  # `${VAR}` for passwords, so that hardware files need hold none
        data = substitute(data, os.environ, secrets)
    except EnvError as exc:
        raise HardwareError(f"{path}: {exc.path}: {exc.message}") from None
    for dotted, value in (overrides or {}).items():
        target = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child
        target[leaf] = value
    try:
        config = HardwareConfig.model_validate(data)
    except ValidationError as exc:
        raise HardwareError(validation_message(str(path) if path is not None else "options", exc)) from None
    hide_in_logs(secrets | set(config.opcua.security.users.values()))
    return config

"""Configuration of one MQTT source (one broker connection).

mqtt:
  - url: mqtt://127.0.0.1:1883
    topics:
      - {filter: "factory/+/+/+", format: json}
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from foundation.durations import Duration
from foundation.models import Strict

Name = Annotated[str, Field(min_length=1)]  # a tag name: line protocol has no empty one


class Topic(Strict):
    """A topic filter and how its payloads become points.

    `topic_tags` names the topic levels, `_` skipping one: with the default
    `_/line/station/sensor`, `factory/L1/Press/energy` gives tags line=L1, station=Press,
    sensor=energy. JSON members named in `tag_keys` become tags, `timestamp_key` the time,
    `value_key` the field `value`; without a `value_key` member every other scalar member is a
    field. On topics whose last level is `events_level`, payloads are events: they go to
    `events_measurement`, the last level is no tag, and every scalar member is a field.

    `$share/GROUP/factory/+/+/+` joins the shared subscription GROUP: the broker gives each
    message to one member of the group only. Received messages carry the real topic
    (`factory/L1/Press/energy`), matched against the plain filter (`match_filter`), so
    `topic_tags` count levels of the real topic.
    """

    filter: str = Field(min_length=1)
    format: Literal["json", "number", "sparkplug"] = "json"
    qos: Literal[0, 1, 2] = 1
    measurement: str | None = Field(default=None, min_length=1)
    topic_tags: str = "_/line/station/sensor"
    tags: dict[Name, str] = Field(default_factory=dict)
    tag_keys: list[Name] = Field(default_factory=lambda: ["unit", "product"])
    timestamp_key: str = "ts"
    value_key: str = "value"
    integers: Literal["float", "keep"] = "float"
    events_level: str | None = "events"
    events_measurement: str = "part"

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        if value.startswith("$share/"):
            parts = value.split("/", 2)
            if len(parts) < 3 or not parts[1] or not parts[2] or "+" in parts[1] or "#" in parts[1]:
                raise ValueError(
                    f"a shared subscription is $share/GROUP/FILTER (GROUP without + or #), got {value!r}"
                )
        levels = _strip_share(value).split("/")
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != len(levels) - 1):
                raise ValueError("'#' must be a whole level and the last one")
            if "+" in level and level != "+":
                raise ValueError("'+' must be a whole level")
        return value

    @property
    def match_filter(self) -> str:
        return _strip_share(self.filter)

    @property
    def default_measurement(self) -> str:
        if self.measurement is not None:
            return self.measurement
        return "sparkplug" if self.format == "sparkplug" else "sensor"


def _strip_share(value: str) -> str:
    if value.startswith("$share/"):
        parts = value.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return value


class MqttSource(Strict):
    """One broker: URL (mqtt:// or mqtts://), identity, TLS, and the topics to take in."""

    name: str | None = None
    url: str
    client_id: str | None = Field(default=None, min_length=1, max_length=128)  # default: stable per config
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    protocol: Literal["5", "3.1.1"] = "5"  # 3.1.1 for brokers without MQTT 5 (e.g. amqtt)
    persistent_session: bool = True
    session_expiry: Duration = Field(default=86400.0, ge=0)
    keepalive: int = Field(default=30, ge=5, le=65535)
    receive_maximum: int = Field(default=10_000, ge=1, le=65535)  # unacknowledged messages in flight
    topics: list[Topic] = Field(min_length=1)
    reconnect_max: Duration = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"must be mqtt://host:port or mqtts://host:port, got {value!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if self.tls else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme in ("mqtts", "ssl") or self.ca_file is not None

    @property
    def label(self) -> str:
        return self.name or self.url

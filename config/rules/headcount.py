"""Settings of the people-underground rule (``rules.headcount``); see docs/rules.md.

The shafts themselves (name, ``limit``, ``reconcile_at``) and which camera lines feed them stay
under ``shafts:`` and ``cameras[].lines[].shaft``; this section adds what only the rule needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from config.types import Duration, Ident, StrictModel

#: the point name of the telemetry record an MQTT count becomes (agent/uplink/external.py)
MQTT_POINT = "people_underground"
_FIELD = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$")


class MqttCount(StrictModel):
    """The count as an MQTT value on the uplink's broker: a JSON object (``field`` is the dotted
    path to the number) or, without ``field``, a bare number."""

    topic: str = Field(description="exact topic (no wildcards) the positioning system publishes to")
    field: str | None = Field(default=None, description="dotted path into a JSON object, e.g. 'shafts.main.people'")

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not v or len(v.encode("utf-8")) > 256:
            raise ValueError("a topic of 1-256 bytes")
        if "+" in v or "#" in v:
            raise ValueError(f"an exact topic without the wildcards '+' or '#' (not {v!r}): one system, one topic")
        if v.startswith("$"):
            raise ValueError(f"a topic not starting with '$' (not {v!r}): those are the broker's own")
        if "\x00" in v or not v.isprintable():
            raise ValueError("a topic of printable characters")
        return v

    @field_validator("field")
    @classmethod
    def _field(cls, v: str | None) -> str | None:
        if v is not None and not _FIELD.match(v):
            raise ValueError(
                "a dotted path of keys (letters, digits, '_' or '-'; at most 8 levels), "
                f"e.g. 'people' or 'shafts.main.people' (not {v!r})"
            )
        return v


class ExternalCount(StrictModel):
    """A personnel-positioning system's count of people underground: a device's telemetry point
    (``device`` + ``point``) or an MQTT value (``mqtt``), exactly one of them."""

    shaft: Ident = Field(description="the shaft (under 'shafts:') this count is compared with")
    device: Ident | None = Field(default=None, description="device id under 'devices:' whose telemetry carries the count")
    point: str | None = Field(default=None, min_length=1, description="the point name in that device's telemetry")
    mqtt: MqttCount | None = Field(default=None, description="the count as an MQTT value instead of a device point")
    #: source id of the telemetry records an MQTT count becomes (default ``pps-<shaft>``)
    source: Ident | None = None
    tolerance: int = Field(default=2, ge=0, description="persons of difference that are not a mismatch")
    for_: Duration = Field(default=300.0, alias="for", description="a mismatch must last this long to alarm")
    max_age: Duration = Field(default=900.0, description="a value older than this is unknown (> the point's max_silent)")

    @model_validator(mode="after")
    def _one_way(self) -> ExternalCount:
        if self.mqtt is None:
            if self.device is None or self.point is None:
                raise ValueError("give either 'device' and 'point' (a Modbus point) or 'mqtt: {topic, field}'")
            if self.source is not None:
                raise ValueError("'source' names the records of an MQTT count; a device point keeps its device id")
        else:
            if self.device is not None or self.point is not None:
                raise ValueError("give either 'device' and 'point' or 'mqtt', not both")
            if self.source is None and len(f"pps-{self.shaft}") > 64:
                raise ValueError(f"'pps-{self.shaft}' is too long for a source id: set 'source' (an id of at most 64 characters)")
        return self

    @property
    def feed_source(self) -> str:
        """The source of the telemetry records that carry the count."""
        if self.mqtt is None:
            return str(self.device)
        return self.source or f"pps-{self.shaft}"

    @property
    def feed_point(self) -> str:
        """The point in those records' ``values``."""
        return str(self.point) if self.mqtt is None else MQTT_POINT


class HeadcountRules(StrictModel):
    """``rules.headcount``: counting is on whenever a shaft has lines; these refine it."""

    #: IANA zone of the site (e.g. Asia/Shanghai) for ``reconcile_at``; empty = the gateway's local zone
    timezone: str | None = None
    #: persons below the limit the count must fall to before over_limit clears (negative clears at ≥ 0)
    hysteresis: int = Field(default=2, ge=1)
    external: list[ExternalCount] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"an IANA time zone such as Asia/Shanghai (not {v!r})") from None
        return v or None


def cross_check(
    rules: HeadcountRules,
    shafts: list[str],
    devices: Mapping[str, set[str]],
    cameras: set[str] | None = None,
    own_topics: str | None = None,
) -> list[tuple[tuple[str | int, ...], str, str]]:
    """External counts name a defined shaft, a defined device and one of its points
    (``devices``: device id -> point names, profile points included); an MQTT count's source id
    is no device's or camera's, and its topic is not under the gateway's own ``own_topics`` root
    (the gateway would read back what it publishes)."""
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    for i, ext in enumerate(rules.external):
        where = ("rules", "headcount", "external", i)
        if ext.shaft not in shafts:
            problems.append(
                ((*where, "shaft"), repr(ext.shaft), f"a shaft defined under 'shafts:' ({sorted(shafts) or 'none defined'})")
            )
        if ext.mqtt is not None:
            taken = set(devices) | (cameras or set())
            if ext.feed_source in taken:
                problems.append(
                    (
                        (*where, "source"),
                        repr(ext.feed_source),
                        "a source id that no device or camera uses (set 'source' to another id)",
                    )
                )
            if own_topics and (ext.mqtt.topic + "/").startswith(own_topics):
                problems.append(
                    (
                        (*where, "mqtt", "topic"),
                        repr(ext.mqtt.topic),
                        f"a topic outside the gateway's own '{own_topics}...' (it publishes and reads commands there)",
                    )
                )
            continue
        if ext.device is None or ext.device not in devices:
            problems.append(
                ((*where, "device"), repr(ext.device), f"a device id under 'devices:' ({sorted(devices) or 'none defined'})")
            )
        elif ext.point not in devices[ext.device]:
            problems.append(
                (
                    (*where, "point"),
                    repr(ext.point),
                    f"a point of device {ext.device!r} (its points and its profile's): {sorted(devices[ext.device])}",
                )
            )
    return problems

"""``MappingFormatter``: records -> a platform's own topics and payloads (``uplink.mapping``).

The templates were compiled and checked when the config was loaded; here they are compiled
once more (cheap) and run per record. A record the templates cannot carry safely (a device name
with '/' in a topic, a table without an entry for it) is not held back and not lost: it goes out
as today's chained JSON on its default topic, and health counts it under ``uplink.mapping``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from agent.uplink.formatters import Formatter, OutboundMessage
from agent.uplink.mapping.context import RecordContext, Site
from agent.uplink.status import iso
from config.mapping import KINDS, CompiledRoute, MappingSettings, compile_mapping
from config.schema import Settings
from config.template import RenderError, excerpt

if TYPE_CHECKING:
    from buffer.boundary import StoredRecord

log = logging.getLogger("headframe.uplink.mapping")

#: A stream of records that fall back is logged at most this often (health counts each one).
LOG_EVERY_S = 60.0


class MappingFormatter:
    """Templates per record kind; a kind without one, or a record they cannot carry, goes out as JSON."""

    def __init__(self, settings: Settings, fallback: Formatter) -> None:
        cfg = settings.uplink.mapping
        assert cfg is not None, "MappingFormatter needs uplink.mapping"
        routes, problems = compile_mapping(cfg)
        if problems:  # the loader refuses such a config; this is for a caller that skipped it
            loc, found, expected = problems[0]
            raise ValueError(f"uplink.mapping.{'.'.join(map(str, loc))}: found {found}; expected {expected}")
        self.routes: dict[str, CompiledRoute | None] = {k: routes.get(k) or routes.get("default") for k in KINDS}
        zone = cfg.timezone or settings.rules.alarms.timezone
        g = settings.gateway
        self.site = Site(settings.uplink.topic_prefix, g.site, g.id, ZoneInfo(zone), settings.rules.alarms)
        self.fallback, self.mirror = fallback, cfg.mirror_json
        self.mapped = self.fell_back = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self._logged_at = 0.0
        self._unlogged = 0

    def format(self, rec: StoredRecord) -> OutboundMessage:
        """The first message only: the drain calls ``format_all`` (``split: point`` gives several)."""
        return self.format_all(rec)[0]

    def format_all(self, rec: StoredRecord) -> list[OutboundMessage]:
        route = self.routes[rec.kind.value]
        if route is None:
            return [self.fallback.format(rec)]
        try:
            msgs = render(route, RecordContext(self.site, rec, orjson.loads(rec.doc)))
        except (RenderError, orjson.JSONEncodeError, orjson.JSONDecodeError, TypeError) as exc:
            self._fall_back(rec, str(exc))
            return [self.fallback.format(rec)]
        except Exception as exc:  # a bug of ours must not make one record block the uplink
            log.exception("uplink mapping: rendering seq %d failed", rec.seq)
            self._fall_back(rec, f"internal error {type(exc).__name__}")
            return [self.fallback.format(rec)]
        self.mapped += 1
        if self.mirror:
            msgs.append(self.fallback.format(rec))
        return msgs

    def counters(self) -> dict[str, Any]:
        """For the health record (``uplink.mapping``)."""
        return {
            "mapped": self.mapped,
            "fallback": self.fell_back,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }

    def _fall_back(self, rec: StoredRecord, why: str) -> None:
        self.fell_back += 1
        self.last_error = f"seq {rec.seq} ({rec.kind.value} from {excerpt(rec.source)}): {why}"
        self.last_error_at = iso(time.time())
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_S and self._logged_at:
            self._unlogged += 1
            return
        more = f" (+{self._unlogged} more since the last message)" if self._unlogged else ""
        log.warning("uplink mapping: %s; sent as plain JSON on its default topic instead%s", self.last_error, more)
        self._logged_at, self._unlogged = now, 0


def render(route: CompiledRoute, ctx: RecordContext) -> list[OutboundMessage]:
    """One message, or one per point; raises RenderError when a value cannot be carried."""
    if route.split == "point":
        points = ctx.points()
        if not points:
            raise RenderError("the record has no points to split")
        return [OutboundMessage(route.topic(pc), orjson.dumps(route.payload(pc))) for pc in map(ctx.with_point, points)]
    return [OutboundMessage(route.topic(ctx), orjson.dumps(route.payload(ctx)))]


def build_formatter(settings: Settings, plain: Formatter) -> Formatter:
    """The uplink's formatter: ``plain`` unless ``uplink.mapping`` is set."""
    cfg: MappingSettings | None = settings.uplink.mapping
    return plain if cfg is None else MappingFormatter(settings, plain)

"""Hot work: permits (config and commands), the person-outside-permit alarm, evidence orders.

A pure state machine over committed records (``rules.base.Rule``). It reads the camera's
``zone_presence`` events for each hot-work zone's presence zone (``hotwork-<zone>``) and the
``permit`` / ``permit_revoke`` commands (source ``platform`` or ``local``); it writes
``permit_started`` / ``permit_ended`` / ``permit_revoked`` events, a ``command_reply`` per
command (idempotent by id), the ``hotwork_person_outside_permit`` alarm, and the
``evidence_recording`` order "camera C records until T" that the agent hands to the camera
worker (agent/recording.py). It never talks to a camera. See docs/rules.md, "Hot work".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from buffer.record import Committed, Kind, Record
from config.rules.hotwork import ZONE_PREFIX, HotworkRules, HotworkZone
from config.schema import Settings
from rules.base import Rule
from rules.hotwork_permits import Permit, PermitRefused, iso, overlapping, parse_permit
from rules.replies import command_reply

COMMANDS = frozenset({"permit", "permit_revoke"})
COMMAND_SOURCES = frozenset({"platform", "local"})
ALARM = "hotwork_person_outside_permit"
#: ended command permits are kept this long after their tail (then only the chain has them)
FORGET_AFTER_S = 86400.0


class HotworkRule:
    """Implements ``rules.base.Rule`` for every zone of ``rules.hotwork``."""

    name = "hotwork"

    def __init__(self, cfg: HotworkRules) -> None:
        self.cfg = cfg
        self.zones: dict[str, HotworkZone] = {z.name: z for z in cfg.zones}
        self._by_presence = {(z.camera, f"{ZONE_PREFIX}{z.name}"): z.name for z in cfg.zones}
        self.permits: dict[str, Permit] = self._config_permits()
        self.present: dict[str, dict[str, Any]] = {}  # zone -> {"present", "count", "since"}
        self.alarms: dict[str, dict[str, Any]] = {}  # zone -> {"raised_at", "quiet_since"}
        self.orders: dict[str, float] = {}  # camera -> record until (epoch s)
        self.commands: OrderedDict[str, str] = OrderedDict()
        self._announce = False  # after a restore: repeat the standing orders once

    # ------------------------------------------------------------------ Rule
    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out: list[Record] = []
        for item in batch:
            rec = item.record
            if rec.kind is not Kind.EVENT:
                continue
            event = rec.payload.get("event")
            if event == "zone_presence":
                zone = self._by_presence.get((rec.source, str(rec.payload.get("zone"))))
                if zone is not None:
                    present = rec.payload.get("present") is True
                    was = self.present.get(zone, {}).get("present")
                    since = rec.ts if present != was else self.present[zone]["since"]
                    self.present[zone] = {"present": present, "count": rec.payload.get("count"), "since": since}
            elif event == "camera_worker_restart":
                for zone, z in self.zones.items():  # the new worker says again what it sees
                    if z.camera == rec.source and zone in self.present:
                        self.present[zone] = {"present": False, "count": None, "since": rec.ts}
            elif event == "command" and rec.source in COMMAND_SOURCES and rec.payload.get("command") in COMMANDS:
                out += self._on_command(rec, now)
        return out + self._evaluate(now)

    def tick(self, now: float) -> list[Record]:
        return self._evaluate(now)

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": 1,
            "permits": [p.to_dict() for p in self.permits.values()],
            "present": self.present,
            "alarms": self.alarms,
            "orders": self.orders,
            "commands": [[cid, res] for cid, res in self.commands.items()],
        }

    def _config_permits(self) -> dict[str, Permit]:
        cfg, out = self.cfg, {}
        for z in cfg.zones:
            for p in z.permits:
                permit = Permit(z.name, p.number, p.issuer, cfg.epoch(p.start), cfg.epoch(p.until), "config")
                out[permit.key] = permit
        return out

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Replace the whole state with ``snapshot`` (the engine rolls back to the last commit this
        way): the config's planned permits, then what the snapshot holds — nothing kept from memory."""
        self.permits = self._config_permits()
        for doc in snapshot.get("permits", []):
            permit = Permit.from_dict(doc)
            if permit.zone not in self.zones:
                continue  # a zone removed from the config is forgotten
            planned = self.permits.get(permit.key)
            if permit.origin == "config" and (planned is None or (planned.start, planned.end) != (permit.start, permit.end)):
                continue  # a planned permit removed from the config, or re-planned: the config's stands
            self.permits[permit.key] = permit
        self.present = {z: v for z, v in snapshot.get("present", {}).items() if z in self.zones}
        self.alarms = {z: v for z, v in snapshot.get("alarms", {}).items() if z in self.zones}
        self.orders = {str(c): float(u) for c, u in snapshot.get("orders", {}).items()}
        self.commands = OrderedDict((str(c), str(r)) for c, r in snapshot.get("commands", []))
        self._announce = True

    # ------------------------------------------------------------- decisions
    def _evaluate(self, now: float) -> list[Record]:
        out: list[Record] = []
        for permit in self.permits.values():
            if permit.status == "pending" and permit.start <= now:
                permit.status = "active"
                out.append(self._permit_event("permit_started", permit, now))
            if permit.status == "active" and permit.end <= now:
                permit.status, permit.ended_at = "ended", permit.end
                out.append(self._permit_event("permit_ended", permit, now, reason="expired"))
        out += self._orders(now)
        self._forget(now)
        for zone in self.zones:
            out += self._alarm(zone, now)
        return out

    def _forget(self, now: float) -> None:
        """Command permits over (tail included) for a day leave the snapshot (the chain keeps
        them); the last one of each zone stays for the alarm's evidence. Config permits stay."""
        done = [p for p in self.permits.values() if p.origin != "config" and p.status in ("ended", "revoked")]
        last = {p.zone: p for p in sorted(done, key=lambda p: p.ended_at or 0.0)}
        for p in done:
            if last[p.zone] is not p and (p.ended_at or 0.0) + self.zones[p.zone].tail < now - FORGET_AFTER_S:
                del self.permits[p.key]

    def _orders(self, now: float) -> list[Record]:
        """One ``evidence_recording`` order per camera whose "record until" changed."""
        want: dict[str, tuple[float, list[str]]] = {}
        for p in self.permits.values():
            if p.status == "active":
                until = p.end + self.zones[p.zone].tail
            elif p.status == "ended" and p.ended_at is not None:
                until = p.ended_at + self.zones[p.zone].tail
            else:
                continue
            cam = self.zones[p.zone].camera
            best, keys = want.get(cam, (0.0, []))
            if until > now:
                want[cam] = (max(best, until), [*keys, p.key])
        out = []
        for cam in sorted({*want, *self.orders}):
            until, keys = want.get(cam, (0.0, []))
            current = self.orders.get(cam, 0.0)
            changed = until != current and not (until == 0.0 and current <= now)
            if changed or (self._announce and until > now):
                self.orders[cam] = until
                reason = "changed" if changed else "restart"
                out.append(
                    Record(
                        cam,
                        Kind.EVENT,
                        {
                            "event": "evidence_recording",
                            "camera": cam,
                            "until": iso(until) if until else None,
                            "until_ts": until,
                            "permits": keys,
                            "reason": reason,
                            "at": iso(now),
                        },
                        ts=now,
                    )
                )
        self._announce = False
        return out

    def _alarm(self, zone: str, now: float) -> list[Record]:
        z = self.zones[zone]
        seen = self.present.get(zone, {})
        permitted = [p for p in self.permits.values() if p.zone == zone and p.status == "active"]
        violating = bool(seen.get("present")) and not permitted
        state = self.alarms.get(zone)
        if violating and state is None:
            self.alarms[zone] = {"raised_at": now, "quiet_since": None}
            return [self._alarm_record(zone, "raised", now, seen)]
        if state is None:
            return []
        if violating:
            state["quiet_since"] = None
            return []
        state["quiet_since"] = state["quiet_since"] if state["quiet_since"] is not None else now
        if now - state["quiet_since"] < z.clear_after:
            return []
        del self.alarms[zone]
        return [self._alarm_record(zone, "cleared", now, seen, "a permit is active" if permitted else "nobody in the zone")]

    def _alarm_record(self, zone: str, state: str, now: float, seen: dict[str, Any], why: str = "") -> Record:
        z = self.zones[zone]
        around = sorted((p for p in self.permits.values() if p.zone == zone), key=lambda p: p.start)
        last = [p.public() for p in around if p.status in ("ended", "revoked")][-1:]
        nxt = [p.public() for p in around if p.status == "pending"][:1]
        text = (
            f"Person in hot-work zone {zone} (camera {z.camera}) without an active permit"
            if state == "raised"
            else f"Hot-work zone {zone}: {why}"
        )
        payload = {
            "alarm": ALARM,
            "state": state,
            "id": f"hotwork:person_outside_permit:{zone}",
            "severity": "immediate",
            "zone": zone,
            "text": text,
            "evidence": {
                "camera": z.camera,
                "count": seen.get("count"),
                "present_since": iso(seen["since"]) if seen.get("since") else None,
                "last_permit": last[0] if last else None,
                "next_permit": nxt[0] if nxt else None,
            },
        }
        return Record(zone, Kind.ALARM, payload, ts=now)

    def _permit_event(self, event: str, permit: Permit, now: float, **extra: Any) -> Record:
        z = self.zones[permit.zone]
        payload = {"event": event, "permit": permit.public(), "camera": z.camera, "at": iso(now), **extra}
        return Record(permit.zone, Kind.EVENT, payload, ts=now)

    # -------------------------------------------------------------- commands
    def _on_command(self, rec: Record, now: float) -> list[Record]:
        p = rec.payload
        cid = p.get("id")
        if not isinstance(cid, str) or not cid:
            return [command_reply(rec, None, "rejected", now, "id: the command has no id")]
        if cid in self.commands:
            return [command_reply(rec, cid, "duplicate", now, f"command {cid} was already {self.commands[cid]}")]
        zone = p.get("target")
        if not isinstance(zone, str) or zone not in self.zones:
            reason = f"target: {str(zone)[:64]!r} is not a hot-work zone; zones: {sorted(self.zones)}"
            return [self._remember(cid, command_reply(rec, cid, "rejected", now, reason))]
        origin = str(p.get("origin", rec.source))
        try:
            if p.get("command") == "permit":
                return self._issue(rec, cid, str(zone), origin, now)
            return self._revoke(rec, cid, str(zone), now)
        except PermitRefused as exc:
            return [self._remember(cid, command_reply(rec, cid, "rejected", now, str(exc)))]

    def _issue(self, rec: Record, cid: str, zone: str, origin: str, now: float) -> list[Record]:
        permit = parse_permit(zone, rec.payload.get("args"), origin, cid, now, self.cfg)
        if permit.key in self.permits:
            raise PermitRefused(f"args.number: permit {permit.number!r} already exists for zone {zone}; revoke it first")
        live = sum(1 for p in self.permits.values() if p.zone == zone and p.status in ("pending", "active"))
        if live >= self.cfg.max_live_permits:
            raise PermitRefused(
                f"target: zone {zone} already has {live} live permits, the limit rules.hotwork.max_live_permits "
                f"({self.cfg.max_live_permits}); revoke unused ones first"
            )
        other = overlapping(permit, list(self.permits.values()))
        if other is not None:
            raise PermitRefused(
                f"args.start / args.end: overlaps permit {other.number!r} ({iso(other.start)} .. {iso(other.end)}) of zone {zone}"
            )
        self.permits[permit.key] = permit
        reply = command_reply(rec, cid, "ok", now, None, state="accepted", permit=permit.public())
        return [self._permit_event("permit_accepted", permit, now, by=rec.payload.get("by")), self._remember(cid, reply)]

    def _revoke(self, rec: Record, cid: str, zone: str, now: float) -> list[Record]:
        args = rec.payload.get("args")
        number = args.get("number") if isinstance(args, dict) else None
        permit = self.permits.get(f"{zone}/{number}") if isinstance(number, str) else None
        if permit is None:
            known = sorted(p.number for p in self.permits.values() if p.zone == zone and p.status in ("pending", "active"))
            raise PermitRefused(f"args.number: no permit {str(number)[:64]!r} in zone {zone}; live permits: {known}")
        if permit.status in ("ended", "revoked"):
            raise PermitRefused(f"args.number: permit {permit.number!r} is already {permit.status}")
        by = rec.payload.get("by")
        permit.revoked_by = str(by) if by else rec.source
        if permit.status == "active":
            permit.status, permit.ended_at = "ended", now
            event = self._permit_event("permit_ended", permit, now, reason="revoked", by=permit.revoked_by)
        else:
            permit.status, permit.ended_at = "revoked", now
            event = self._permit_event("permit_revoked", permit, now, by=permit.revoked_by)
        reply = command_reply(rec, cid, "ok", now, None, state=permit.status, permit=permit.public())
        return [event, self._remember(cid, reply)]

    def _remember(self, cid: str, reply: Record) -> Record:
        self.commands[cid] = reply.payload["result"]
        while len(self.commands) > self.cfg.recent_commands:
            self.commands.popitem(last=False)
        return reply


class NoHotworkRule:
    """On a gateway without hot-work zones a permit still gets an answer: rejected, with why.

    A command nobody answers looks lost to the platform; this one is recorded and refused.
    """

    name = "hotwork"

    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        return [
            command_reply(
                item.record,
                str(item.record.payload.get("id")),
                "rejected",
                now,
                "no hot-work zones are configured on this gateway (rules.hotwork.zones)",
            )
            for item in batch
            if item.record.kind is Kind.EVENT
            and item.record.payload.get("event") == "command"
            and item.record.source in COMMAND_SOURCES
            and item.record.payload.get("command") in COMMANDS
        ]

    def tick(self, now: float) -> list[Record]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, snapshot: dict[str, Any]) -> None:
        return None


def build(settings: Settings) -> list[Rule]:
    """The hot-work rule (registry entry ``rules.hotwork:build``); without zones, the rule that
    refuses permits with the reason."""
    cfg = settings.rules.hotwork
    return [HotworkRule(cfg)] if cfg.zones else [NoHotworkRule()]

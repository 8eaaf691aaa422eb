"""The alarm manager: the last rule, it gives every alarm an id, a severity and a life.

It consumes every committed alarm record (drivers, vision, agent, and the rules before it),
keeps the open alarms, turns ``ack`` / ``handle`` / ``close`` commands (source ``platform`` or
``local``) into transitions, and re-announces and escalates alarms nobody acknowledged in time.
Each transition is an ``alarm_state`` event; each command gets one ``command_reply``. Commands
are idempotent by id: accepted ids are kept by count and for a time window, rejected ids in a
separate bounded cache (so junk cannot push real ids out). See docs/rules.md, "Alarm life".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from buffer.record import Committed, Kind, Record
from config.rules.alarms import AlarmRules
from config.schema import Settings
from rules.alarm_life import (
    COMMAND_STATE,
    Alarm,
    ack_deadline,
    alarm_id,
    command_problem,
    iso,
    occurrence_problem,
    repeat_every,
    severity_of,
)
from rules.base import Rule
from rules.rectification import suppressed_seqs
from rules.replies import command_reply

#: The commands this rule owns; other commands (e.g. ``permit``) belong to other rules.
ALARM_COMMANDS = frozenset(COMMAND_STATE)
#: Where commands may come from (the MQTT uplink and the local control socket).
COMMAND_SOURCES = frozenset({"platform", "local"})


class AlarmManager:
    """Implements ``rules.base.Rule``; runs last so it sees every other rule's alarms."""

    name = "alarms"

    def __init__(self, cfg: AlarmRules | None = None) -> None:
        self.cfg = cfg or AlarmRules()
        self.open: dict[str, Alarm] = {}
        self.commands: OrderedDict[str, tuple[str, float]] = OrderedDict()  # accepted id -> (result, at)
        self.rejected: OrderedDict[str, tuple[str, float]] = OrderedDict()  # rejected / stale id -> (result, at)

    # ------------------------------------------------------------------ Rule
    def apply(self, batch: Sequence[Committed], now: float) -> list[Record]:
        out: list[Record] = []
        approved = suppressed_seqs(batch)  # seal alarms of approved rectification work: no alarm life
        for item in batch:
            rec = item.record
            if rec.kind is Kind.ALARM:
                if item.seq not in approved:
                    out += self._on_alarm(rec, now)
            elif (
                rec.kind is Kind.EVENT
                and rec.source in COMMAND_SOURCES
                and rec.payload.get("event") == "command"
                and rec.payload.get("command") in ALARM_COMMANDS
            ):
                out += self._on_command(rec, now)
        return out

    def tick(self, now: float) -> list[Record]:
        """Re-announce and escalate every open alarm whose acknowledgement is overdue."""
        out: list[Record] = []
        for alarm in self.open.values():
            if alarm.acked or now < alarm.due:
                continue
            alarm.reannounced += 1
            alarm.level = alarm.level + 1
            alarm.due = now + repeat_every(alarm.severity, self.cfg)
            targets = self.cfg.escalate_to
            to = targets[min(alarm.level, len(targets)) - 1]
            out.append(
                Record(
                    alarm.source,
                    Kind.EVENT,
                    {
                        "event": "alarm_reminder",
                        "id": alarm.id,
                        "type": alarm.type,
                        "severity": alarm.severity,
                        "state": alarm.state,
                        "reannounced": alarm.reannounced,
                        "escalation_level": alarm.level,
                        "escalate_to": to,
                        "raised_at": iso(alarm.raised_at),
                        "at": iso(now),
                        "text": f"alarm {alarm.id} not acknowledged since {iso(alarm.raised_at)}; escalated to {to}",
                    },
                    ts=now,
                )
            )
            if not alarm.active:
                continue  # the condition is gone: remind, but do not re-announce it as raised
            again = {
                **alarm.last,
                "alarm": alarm.type,
                "state": "raised",
                "id": alarm.id,
                "severity": alarm.severity,
                "reannounced": alarm.reannounced,
                "escalation_level": alarm.level,
                "escalate_to": to,
            }
            out.append(Record(alarm.source, Kind.ALARM, again, ts=now))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": 2,
            "open": [a.to_dict() for a in self.open.values()],
            "commands": [[cid, result, at] for cid, (result, at) in self.commands.items()],
            "rejected": [[cid, result, at] for cid, (result, at) in self.rejected.items()],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.open = {}
        for doc in snapshot.get("open", []):
            alarm = Alarm.from_dict(doc)
            self.open[alarm.id] = alarm
        self.commands = OrderedDict(_ids(snapshot.get("commands", [])))
        self.rejected = OrderedDict(_ids(snapshot.get("rejected", [])))
        self._bound_commands(max((at for _res, at in self.commands.values()), default=None))

    # -------------------------------------------------------------- alarms
    def _on_alarm(self, rec: Record, now: float) -> list[Record]:
        payload = rec.payload
        kind, state = payload.get("alarm"), payload.get("state")
        if not isinstance(kind, str) or not kind or state not in ("raised", "cleared"):
            return []
        aid = alarm_id(rec.source, payload)
        alarm = self.open.get(aid)
        if state == "raised":
            if alarm is None:
                severity = severity_of(kind, payload, self.cfg)
                alarm = Alarm(
                    aid,
                    kind,
                    severity,
                    rec.source,
                    rec.ts,
                    due=ack_deadline(severity, rec.ts, self.cfg),
                    last=_evidence_free(payload),
                )
                self.open[aid] = alarm
                return [self._state_event(alarm, None, rec.source, now)]
            alarm.raised_count += 1
            alarm.last = _evidence_free(payload)
            one_shot = alarm.type in self.cfg.close_while_active  # sources that never send "cleared"
            if alarm.acked and (not alarm.active or one_shot):
                # a new occurrence of an alarm someone already acknowledged: it needs its own
                # acknowledgement, deadline and reminders (never absorbed into the old one)
                before = alarm.state
                alarm.progress, alarm.raised_at, alarm.reannounced, alarm.level = "raised", rec.ts, 0, 0
                alarm.due = ack_deadline(alarm.severity, rec.ts, self.cfg)
                alarm.active, alarm.shows_cleared = True, False
                return [self._state_event(alarm, before, rec.source, now, occurrence="new")]
            if alarm.active:
                return []  # re-raised while open and not yet acknowledged: counted, not a new alarm
            before = alarm.state  # the condition is back before anyone acknowledged: the same alarm
            alarm.active, alarm.shows_cleared = True, False
            return [self._state_event(alarm, before, rec.source, now)]
        if alarm is None or not alarm.active:
            return []  # cleared for an alarm already closed (or never seen): nothing to move
        before = alarm.state
        alarm.active, alarm.shows_cleared = False, True
        return [self._state_event(alarm, before, rec.source, now)]

    def _state_event(
        self, alarm: Alarm, before: str | None, by: str, now: float, state: str | None = None, **extra: Any
    ) -> Record:
        payload = {
            "event": "alarm_state",
            "id": alarm.id,
            "type": alarm.type,
            "severity": alarm.severity,
            "state": state or alarm.state,
            "from": before,
            "by": by,
            "at": iso(now),
            "condition": "active" if alarm.active else "cleared",
            "raised_count": alarm.raised_count,
            "raised_at": iso(alarm.raised_at),
            **extra,
        }
        return Record(alarm.source, Kind.EVENT, payload, ts=now)

    # ------------------------------------------------------------ commands
    def _on_command(self, rec: Record, now: float) -> list[Record]:
        p = rec.payload
        cid, command, target = p.get("id"), p.get("command"), p.get("target")
        if not isinstance(cid, str) or not cid:
            return [command_reply(rec, None, "rejected", now, "command has no id")]
        known = self.commands.get(cid) or self.rejected.get(cid)
        if known is not None:
            return [command_reply(rec, cid, "duplicate", now, f"command {cid} was already {known[0]}")]
        out = self._execute(rec, cid, str(command), target, now)
        return out

    def _execute(self, rec: Record, cid: str, command: str, target: Any, now: float) -> list[Record]:
        by = p_by if isinstance(p_by := rec.payload.get("by"), str) and p_by else rec.source
        if not isinstance(target, str) or not target:
            return [self._remember(cid, command_reply(rec, cid, "rejected", now, "command has no target alarm id"))]
        alarm = self.open.get(target)
        if alarm is None:
            reason = f"unknown alarm id {target!r} (not open on this gateway; {len(self.open)} open)"
            return [self._remember(cid, command_reply(rec, cid, "rejected", now, reason))]
        stale = occurrence_problem(alarm, rec.payload.get("args"))
        if stale is not None:  # a command for an earlier occurrence must not act on this one
            return [self._remember(cid, command_reply(rec, cid, "stale", now, stale))]
        problem = command_problem(alarm, command, self.cfg)
        if problem is not None:
            return [self._remember(cid, command_reply(rec, cid, "rejected", now, problem))]
        before = alarm.state
        new = COMMAND_STATE[command]
        alarm.by[new] = by
        extra = {"command": cid, "origin": rec.payload.get("origin", rec.source)}
        if command == "close":
            del self.open[alarm.id]
            event = self._state_event(alarm, before, by, now, state="closed", **extra)
        else:
            alarm.progress, alarm.shows_cleared = new, False
            event = self._state_event(alarm, before, by, now, **extra)
        reply = command_reply(rec, cid, "ok", now, None, state=event.payload["state"])
        return [event, self._remember(cid, reply)]

    def _remember(self, cid: str, reply: Record) -> Record:
        result = str(reply.payload["result"])
        cache = self.commands if result == "ok" else self.rejected
        cache[cid] = (result, reply.ts)
        self._bound_commands(reply.ts)
        return reply

    def _bound_commands(self, now: float | None) -> None:
        """Accepted ids: beyond ``recent_commands`` only those older than ``remember_commands_for``
        go (hard cap 10x); rejected ids: ``recent_rejected`` at most."""
        cfg = self.cfg
        while len(self.commands) > cfg.recent_commands:
            _cid, (_res, at) = next(iter(self.commands.items()))
            young = now is not None and now - at < cfg.remember_commands_for
            if young and len(self.commands) <= 10 * cfg.recent_commands:
                break
            self.commands.popitem(last=False)
        while len(self.rejected) > cfg.recent_rejected:
            self.rejected.popitem(last=False)


def _ids(rows: Any) -> list[tuple[str, tuple[str, float]]]:
    """Saved command ids; version 1 saved ``[id, result]`` without a time (kept as time 0)."""
    return [(str(r[0]), (str(r[1]), float(r[2]) if len(r) > 2 else 0.0)) for r in rows]


def _evidence_free(payload: dict[str, Any]) -> dict[str, Any]:
    """The alarm's payload kept for re-announcement, without bulky evidence (attachments are
    not repeated; the original record carries them)."""
    return {k: v for k, v in payload.items() if k not in ("evidence", "reannounced", "escalation_level", "escalate_to")}


def build(settings: Settings) -> list[Rule]:
    """The alarm manager for ``rules.alarms`` (registry entry ``rules.alarms:build``, run LAST);
    none when ``rules.alarms.enabled`` is false."""
    cfg = settings.rules.alarms
    return [AlarmManager(cfg)] if cfg.enabled else []

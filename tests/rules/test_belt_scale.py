"""Belt × scale: the camera's load level against the scale's t/h for longer than ``for``."""

from __future__ import annotations

import json

from buffer.record import Kind, Record
from config.rules.site import BeltScale
from rules.belt import BeltScaleRule
from tests.rules.sitefeed import camera_telemetry, payloads, reading


def rule() -> BeltScaleRule:
    return BeltScaleRule(
        BeltScale.model_validate(
            {"name": "main-belt", "scale": "plc-belt.scale_tph", "camera": "cam-belt", "for": "60s", "max_age": "30s"}
        )
    )


def feed(r: BeltScaleRule, start: float, seconds: int, load: float, tph: float | tuple) -> list[Record]:
    out: list[Record] = []
    for k in range(0, seconds, 10):
        t = start + k
        out += r.apply(
            [camera_telemetry("cam-belt", t, belt={"running": True, "load_pct": load}), reading("plc-belt", t, scale_tph=tph)], t
        )
    return out


def test_loaded_belt_with_a_zero_scale_for_longer_than_for_raises_then_clears() -> None:
    r = rule()
    assert payloads(feed(r, 0, 300, load=45.0, tph=310.0), Kind.ALARM) == []  # agreeing: nothing
    out = feed(r, 300, 60, load=45.0, tph=0.2)
    assert payloads(out, Kind.ALARM) == []  # 50 s of mismatch: not yet
    out = feed(r, 360, 20, load=45.0, tph=0.2)
    [a] = payloads(out, Kind.ALARM)
    assert (a["alarm"], a["state"], a["id"], a["mismatch"]) == (
        "belt_scale_mismatch",
        "raised",
        "belt:belt_scale_mismatch:main-belt",
        "loaded_scale_zero",
    )
    assert a["evidence"]["load_pct"] == 45.0 and a["evidence"]["scale"]["v"] == 0.2
    json.dumps(a)
    out = feed(r, 380, 50, load=45.0, tph=300.0)
    assert payloads(out, Kind.ALARM) == []  # agreement must last ``for`` too
    [c] = payloads(feed(r, 430, 30, load=45.0, tph=300.0), Kind.ALARM)
    assert c["state"] == "cleared"


def test_scale_flow_on_an_empty_belt_is_the_reverse_mismatch() -> None:
    r = rule()
    [a] = payloads(feed(r, 0, 80, load=1.0, tph=250.0), Kind.ALARM)
    assert a["mismatch"] == "empty_scale_flowing"


def test_a_stale_scale_decides_nothing() -> None:
    r = rule()
    assert payloads(feed(r, 0, 300, load=45.0, tph=("stale", 0.0)), Kind.ALARM) == []
    assert payloads(feed(r, 300, 300, load=45.0, tph=("bad", None)), Kind.ALARM) == []


def test_a_short_interruption_restarts_the_timer_and_restore_keeps_it() -> None:
    r = rule()
    feed(r, 0, 50, load=45.0, tph=0.0)
    feed(r, 50, 10, load=45.0, tph=200.0)
    again = rule()
    again.restore(json.loads(json.dumps(r.snapshot())))
    assert payloads(feed(again, 60, 50, load=45.0, tph=0.0), Kind.ALARM) == []
    assert len(payloads(feed(again, 110, 20, load=45.0, tph=0.0), Kind.ALARM)) == 1

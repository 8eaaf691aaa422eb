"""The site-rule HIL scenarios end to end: a real agent with the real rules engine against the
simulated site (PLC, meters, MJPEG cameras of real video, mosquitto), one run each.

The four runs are independent (each its own broker, PLC, ptys and camera server on free
ports), so they run concurrently: about as long as the longest one. Every scenario waits on
records (``wait_for``), not on fixed sleeps, except where it must watch that something does
NOT happen (pumps_and_fans_only, the quiet spell after an ack).
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError
from hil import overlay
from hil.expect import distinct, matches, sequence
from hil.runner import ScenarioRun
from hil.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "hil" / "scenarios"
RULE_SCENARIOS = ("secretly_running", "pumps_and_fans_only", "rectification_over_limit", "alarm_acknowledged_from_platform")
ALARM = "site:secretly_running:site"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each scenario's result and the distinct records the recorder received, run concurrently."""
    base = tmp_path_factory.mktemp("rule-scenarios")

    def one(name: str) -> tuple[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
        run = ScenarioRun(load_scenario(SCENARIOS / f"{name}.yaml"), base / name)
        result = run.run()
        return name, (result, distinct(run.messages))

    with ThreadPoolExecutor(len(RULE_SCENARIOS)) as pool:
        return dict(pool.map(one, RULE_SCENARIOS))


def passed(result: dict[str, Any]) -> None:
    failed = {k: v["detail"] for k, v in result["checks"].items() if not v["ok"]}
    assert result["passed"], failed


def payload_of(msgs: list[dict[str, Any]], want: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in msgs if matches(m, want)]


def test_secretly_running(runs: dict[str, Any]) -> None:
    result, msgs = runs["secretly_running"]
    passed(result)
    # the second alarm (the plant) carries a COPY of the seal camera's latest snapshot: the same
    # bytes as the snapshot.jpg of the seal alarm its evidence names by seq
    raised = payload_of(msgs, {"kind": "alarm", "alarm": "secretly_running", "state": "raised"})
    assert len(raised) == 2
    seal = raised[1]["payload"]["evidence"]["seal_cameras"][0]
    original = next(m for m in msgs if m["seq"] == seal["last_seal_alarm"]["seq"])
    assert original["source"] == "cam-seal" and original["payload"]["alarm"] == "seal_breach"
    snap = next(a for a in original["attachments"] if a["name"] == "snapshot.jpg")
    copy = next(a for a in raised[1]["attachments"] if a["name"] == "cam-seal-snapshot.jpg")
    assert copy["sha256"] == snap["sha256"] == hashlib.sha256(base64.b64decode(copy["data"])).hexdigest()
    # the plant alarm came after the plant started and cleared after it stopped
    on = payload_of(msgs, {"kind": "event", "event": "operating_state", "state": "operating"})[0]
    assert raised[1]["seq"] < on["seq"]  # run bits prove it before the power threshold's min_duration


def test_pumps_and_fans_only(runs: dict[str, Any]) -> None:
    result, msgs = runs["pumps_and_fans_only"]
    passed(result)
    # not vacuous: while nothing was raised, the fan and pumps ran and the site drew power
    assert payload_of(msgs, {"kind": "telemetry", "source": "plc-hoist", "values.pump1_running.v": True})
    assert not payload_of(msgs, {"kind": "alarm"})


def test_rectification_over_limit(runs: dict[str, Any]) -> None:
    result, msgs = runs["rectification_over_limit"]
    passed(result)
    # every suppression names a seal alarm of the approved camera, inside the window
    suppressed = payload_of(msgs, {"kind": "event", "event": "seal_alarm_suppressed"})
    by_seq = {m["seq"]: m for m in msgs}
    for s in suppressed:
        alarm = by_seq[s["payload"]["alarm_seq"]]
        assert (alarm["source"], alarm["payload"]["alarm"]) == ("cam-seal", "seal_breach")
    # the breach outside the approval has its alarm life; the limit alarm's count is a count the camera saw
    over = payload_of(msgs, {"kind": "alarm", "alarm": "place_over_limit", "state": "raised"})[0]["payload"]["evidence"]
    seen = {
        m["payload"]["zones"]["landing"]["count"]
        for m in msgs
        if m["source"] == "cam-shaft" and m["kind"] == "telemetry" and "zones" in m["payload"]
    } | {m["payload"].get("count") for m in payload_of(msgs, {"source": "cam-shaft", "zone": "landing"})}
    assert over["count"] in seen and over["count"] > over["limit"] == 2


def test_alarm_acknowledged_from_platform(runs: dict[str, Any]) -> None:
    result, msgs = runs["alarm_acknowledged_from_platform"]
    passed(result)
    acked = payload_of(msgs, {"kind": "event", "event": "alarm_state", "id": ALARM, "state": "acknowledged"})[0]["seq"]
    reminders = payload_of(msgs, {"kind": "event", "event": "alarm_reminder", "id": ALARM})
    levels = [m["payload"]["escalation_level"] for m in reminders]
    assert levels[:2] == [1, 2] and levels == sorted(levels)
    assert all(m["seq"] < acked for m in reminders), "re-announced after the acknowledgement"
    # every valid command got exactly one reply per delivery, in the order sent
    ok, detail = sequence(
        msgs,
        [
            {"event": "command_reply", "id": "hil-ack-1", "result": "ok"},
            {"event": "command_reply", "id": "hil-ack-1", "result": "duplicate"},
            {"event": "command_reply", "id": "hil-ack-2", "result": "rejected"},
            {"event": "command_reply", "id": "hil-close-0", "result": "rejected"},
            {"event": "command_reply", "id": "hil-close-1", "result": "ok"},
        ],
    )
    assert ok, detail


# --- the rig's new steps and expectations, without a site ---------------------------------------


def test_invalid_new_steps_are_named_with_step_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    cases = [
        ("  - {action: publish}\n", "step 2 (publish)", "exactly one of 'payload'"),
        ("  - {action: publish, payload: {id: x}, raw: x}\n", "step 2 (publish)", "exactly one"),
        ("  - {action: wait_for, record: {event: x, n: {$around: 3}}}\n", "step 2 (wait_for)", "unknown operator '$around'"),
        ("  - {action: wait_for, record: {}}\n", "step 2 (wait_for)", "non-empty mapping"),
        ("  - {action: camera, name: seal}\n", "step 2 (camera)", "'mode' or 'clip'"),
        ("  - {action: camera, name: seal, clip: crowd}\n", "step 2 (camera)", "people"),
    ]
    for step, where, words in cases:
        bad.write_text("name: x\nsteps:\n  - {action: wait, seconds: 1}\n" + step)
        with pytest.raises(ConfigError) as info:
            load_scenario(bad)
        msg = str(info.value)
        assert "bad.yaml:4:" in msg and where in msg and words in msg, msg
    bad.write_text("name: x\nsteps: []\nexpect:\n  count:\n    - {match: {alarm: x}}\n")
    with pytest.raises(ConfigError, match="'equals', 'min' or 'max'"):
        load_scenario(bad)


def test_expectation_operators_and_counts() -> None:
    msg = {
        "seq": 7,
        "kind": "alarm",
        "source": "site",
        "attachments": [{"name": "cam-seal-snapshot.jpg", "size": 4000}],
        "payload": {"alarm": "secretly_running", "evidence": {"power": [{"point": "p", "v": 41.9}], "plc": []}},
    }
    assert matches(msg, {"evidence.power.0.v": {"$gt": 10, "$lt": 50}, "evidence.plc": {"$len": 0}})
    assert matches(msg, {"evidence.power": {"$any": {"point": "p", "v": {"$ge": 41.9}}}})
    assert matches(msg, {"attachments": {"$any": {"name": "cam-seal-snapshot.jpg"}}})
    assert not matches(msg, {"evidence.power": {"$all": [{"point": "p"}, {"point": "q"}]}})
    assert not matches(msg, {"evidence.power.1.v": {"$exists": True}})
    assert matches(msg, {"evidence.power.1.v": {"$exists": False}, "alarm": {"$in": ["secretly_running"]}})
    assert not matches(msg, {"evidence.power.0.v": {"$gt": "ten"}})  # a string never compares
    dup = [msg, dict(msg), {**msg, "seq": 9, "payload": {"alarm": "x"}}]
    assert sequence(dup, [{"alarm": "secretly_running"}, {"alarm": "x"}])[0]
    assert not sequence(dup, [{"alarm": "x"}, {"alarm": "secretly_running"}])[0]
    assert len(distinct(dup)) == 2  # QoS 1 duplicates count once


def test_config_overlay_paths_and_placeholders() -> None:
    doc: dict[str, Any] = {"cameras": [{"id": "a"}], "rules": {"site": {"sections": [{"name": "site"}]}}}
    changes = overlay.expand(
        {"cameras.0.url": "${camera:shaft}", "cameras.+": {"id": "b"}, "rules.site.sections.0.clear_after": "6s"},
        lambda name: f"http://cam/{name}.mjpg",
        "Asia/Shanghai",
    )
    overlay.apply(doc, changes)
    assert doc["cameras"] == [{"id": "a", "url": "http://cam/shaft.mjpg"}, {"id": "b"}]
    assert doc["rules"]["site"]["sections"][0]["clear_after"] == "6s"
    with pytest.raises(overlay.OverlayError, match=r"cameras\.5: '5' is not an index"):
        overlay.apply(doc, {"cameras.5": {}})
    with pytest.raises(overlay.OverlayError, match="unknown placeholder"):
        overlay.expand("${tomorrow}", str, "Asia/Shanghai")
    assert len(overlay.expand("${today+1}", str, "Asia/Shanghai")) == 10

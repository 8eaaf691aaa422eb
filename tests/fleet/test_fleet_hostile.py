"""The fleet page against hostile publishers: gateway ids (topic levels), states, reasons and
device names crafted to break out of HTML attributes or inject elements, published to real
mosquitto, the page loaded in real headless Chromium and every row hovered. No script may run;
every hostile string must show as text, exactly as published."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from agent.uplink.status import iso
from tests.support.agentproc import REPO
from tests.support.broker import free_port
from tests.support.chromium import chromium, needs_chromium
from tests.support.wait import wait_until

# MQTT topic levels cannot hold '/', '+' or '#': everything else is fair game
ATTR_ID = 'x" onmouseover="window.__pwned=1" y="'
TAG_SITE = "<img src=x onerror=window.__pwned=2>"
HOSTILE_STATUS = 'online" onmouseover="window.__pwned=3" y="'
HOSTILE_REASON = "<img src=x onerror=window.__pwned=4>"
HOSTILE_DEVICE = "<svg onload=window.__pwned=5>"
HOSTILE_STATE = "'><script>window.__pwned=6</script>"


def publish_hostile(port: int) -> dict[str, str]:
    """Retained messages from an attacker allowed to publish; returns row id -> what it must show."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    c.connect("127.0.0.1", port)
    c.loop_start()
    msgs = [
        (f"headframe/site1/{ATTR_ID}/status", {"status": "online"}),
        (f"headframe/{TAG_SITE}/gw/status", {"status": "offline", "reason": HOSTILE_REASON, "since": iso(time.time() - 7200)}),
        ("headframe/site1/gw-status/status", {"status": HOSTILE_STATUS}),
        (
            "headframe/site1/gw-dev/health/agent",
            {
                "seq": 1,
                "ts": iso(time.time()),
                "payload": {
                    "schema": "headframe.health/1",
                    "buffer": {"depth": 0, "dropped": {}},
                    "clock": {"synchronized": True},
                    "producers": {"drivers": {"devices": {HOSTILE_DEVICE: {"state": HOSTILE_STATE}}}},
                },
            },
        ),
    ]
    for topic, doc in msgs:
        c.publish(topic, orjson.dumps(doc), qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    # ids that break the id rule (letters, digits, . _ -) are refused outright (counted in
    # headframe_fleet_rejected_messages_total{reason="bad_id"}); hostile text under a valid id is shown as text
    return {
        "site1/gw-status": HOSTILE_STATUS,
        "site1/gw-dev": f"{HOSTILE_DEVICE}: {HOSTILE_STATE}",
    }


REFUSED_IDS = (f"site1/{ATTR_ID}", f"{TAG_SITE}/gw")


@needs_chromium
def test_hostile_ids_are_refused_and_hostile_text_shows_as_text_running_nothing(broker, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    expected = publish_hostile(broker.port)
    port = free_port()
    fleet = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "fleet", "--broker", f"127.0.0.1:{broker.port}", "--http", f"127.0.0.1:{port}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with chromium(tmp_path / "prof", lang="en-US") as driver:
            assert fleet.stdout is not None and b"fleet page" in fleet.stdout.readline()
            driver.get(f"http://127.0.0.1:{port}/")

            def rows() -> dict[str, str]:  # in one call: the table is rebuilt every 2 s
                pairs = driver.execute_script(
                    "return [...document.querySelectorAll('#fleet tbody tr')].map(r => [r.dataset.gateway, r.innerText])"
                )
                return {g: t for g, t in pairs}

            wait_until("a row per hostile gateway", lambda: len(rows()) >= len(expected), timeout=20)
            # hover every row (a handler on the row fires from any of its cells), twice across a refresh
            for _ in range(2):
                for td in driver.find_elements(By.CSS_SELECTOR, "#fleet tbody td:first-child"):
                    with contextlib.suppress(StaleElementReferenceException):  # rebuilt under the pointer
                        ActionChains(driver).move_to_element(td).perform()
                time.sleep(2.1)
            assert driver.execute_script("return window.__pwned") is None, "script from a published message ran"
            # nothing was parsed as markup: no element but the page's own, no event handler attributes
            injected = driver.execute_script(
                "return [...document.querySelectorAll('#fleet tbody *')]"
                ".filter(e => !['TR','TD','BR','SMALL'].includes(e.tagName) || [...e.attributes]"
                ".some(a => a.name.startsWith('on'))).map(e => e.outerHTML)"
            )
            assert injected == []
            shown = rows()
            assert not set(REFUSED_IDS) & set(shown), sorted(shown)
            for gateway, text in expected.items():
                assert gateway in shown, f"{gateway!r} not shown as its own id: {sorted(shown)}"
                assert gateway in shown[gateway] and text in shown[gateway], shown[gateway]
            classes = driver.execute_script("return [...document.querySelectorAll('#fleet tbody tr')].map(r => r.className)")
            assert set(classes) <= {"online", "offline", "unknown"}
    finally:
        fleet.terminate()
        fleet.wait(10)


def test_terminal_table_prints_control_sequences_as_text(broker) -> None:
    """ESC sequences in published names and reasons must not reach the operator's terminal."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker-tty")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    health = {
        "seq": 1,
        "ts": iso(time.time()),
        "payload": {
            "schema": "headframe.health/1",
            "buffer": {"depth": 0, "dropped": {}},
            "clock": {"synchronized": True},
            "producers": {"drivers": {"devices": {"\x1b]0;owned\x07meter": {"state": "\x1b[2Jcleared"}}}},
        },
    }
    status = {"status": "offline", "reason": "\x1b[31mred\x9b", "since": iso(time.time() - 7200)}
    c.publish("headframe/s1/gw-tty/health/agent", orjson.dumps(health), qos=1, retain=True).wait_for_publish(5)
    c.publish("headframe/s1/gw-tty/status", orjson.dumps(status), qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    res = subprocess.run(
        [sys.executable, "-m", "agent.cli", "fleet", "--broker", f"127.0.0.1:{broker.port}", "--once", "--wait", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "s1/gw-tty" in res.stdout
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout and "\x9b" not in res.stdout
    assert "\\x1b]0;owned\\x07meter: \\x1b[2Jcleared" in res.stdout and "(\\x1b[31mred\\x9b)" in res.stdout

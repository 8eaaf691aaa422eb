"""In a real headless Chromium against the real agent: add a device from a profile (probe first),
see a refusal in Chinese naming the key, save, and watch the new device's live values arrive."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from tests.support.broker import Collector
from tests.support.chromium import chromium, needs_chromium, waiter
from tests.web.conftest import PASSWORD, Site
from tests.web.test_web_chromium import shot


def float_regs(value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", value)))


@needs_chromium
def test_add_a_device_from_a_profile_and_see_its_values(site: Site, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    site.image.set_registers("holding", 0, float_regs(2.5))  # the hoist PLC's hoist_speed (profile point 1)
    plc_port = json.loads(site.config.read_text())["devices"][0]["port"]
    events = Collector(site.broker, ["headframe/test-site/gw-test/event/agent"], client_id="dev-audit").start()
    try:
        with chromium(tmp_path / "profile") as d:
            wait = waiter(d)
            d.get(site.url + "/login")
            d.find_element(By.ID, "password").send_keys(PASSWORD)
            d.find_element(By.ID, "login").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#dev-profile option"), message="no profile list")
            Select(d.find_element(By.ID, "dev-profile")).select_by_value("siemens_s7_1200_hoist")
            Select(d.find_element(By.ID, "dev-protocol")).select_by_value("modbus_tcp")
            assert d.find_element(By.ID, "dev-host").is_displayed()  # the TCP fields are shown
            assert not d.find_element(By.ID, "dev-address").is_displayed()  # a meter address is not asked for
            d.find_element(By.ID, "dev-id").send_keys("plc-1")  # taken
            d.find_element(By.ID, "dev-host").send_keys("127.0.0.1")
            port = d.find_element(By.ID, "dev-port")
            port.clear()
            port.send_keys(str(plc_port))
            d.find_element(By.ID, "dev-interval").send_keys("300ms")
            d.find_element(By.ID, "dev-preview").click()
            wait.until(
                lambda d: (
                    "devices[2].id" in d.find_element(By.ID, "dev-problems").text
                    and "不重复的设备 id" in d.find_element(By.ID, "dev-problems").text
                ),
                message="the duplicate name is not refused in the loader's words",
            )
            before = site.config.read_text()

            name = d.find_element(By.ID, "dev-id")
            name.clear()
            name.send_keys("hoist-1")
            d.find_element(By.ID, "dev-probe").click()
            d.find_element(By.ID, "dev-preview").click()
            wait.until(lambda d: "hoist_speed = 2.5 m/s" in d.find_element(By.ID, "dev-message").text, message="no probe answer")
            diff = d.find_element(By.ID, "dev-diff").text
            assert '"id": "hoist-1"' in diff and '"profile": "siemens_s7_1200_hoist"' in diff
            assert site.config.read_text() == before  # the preview wrote nothing
            shot(d, tmp_path, "add-device")

            d.find_element(By.ID, "dev-add").click()
            wait.until(lambda d: "已保存并生效" in d.find_element(By.ID, "notice").text, message="not saved and applied")
            value = '[data-point="hoist-1.hoist_speed"] .value'
            wait.until(
                lambda d: d.find_element(By.CSS_SELECTOR, value).text == "2.5 m/s", message="no live value of the new device"
            )
            site.image.set_registers("holding", 0, float_regs(3.75))  # the PLC changes; the new device follows
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, value).text == "3.75 m/s")

        saved = json.loads(site.config.read_text())["devices"][2]
        assert saved == {
            "id": "hoist-1",
            "protocol": "modbus_tcp",
            "profile": "siemens_s7_1200_hoist",
            "host": "127.0.0.1",
            "port": plc_port,
            "unit": 1,
            "groups": [{"name": "default", "interval": "300ms"}],
        }

        def audited(messages: list[Any]) -> bool:  # the save is a config-audit record like any other
            return any(
                m.json()["payload"].get("event") == "config_applied"
                and any("hoist-1" in k for k in m.json()["payload"].get("changed") or ())
                for m in messages
            )

        events.wait_for(audited, timeout=20)
    finally:
        events.stop()

"""The technician page in a real headless Chromium: log in, watch a live value change, acknowledge an alarm."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.support.chromium import chromium, needs_chromium, waiter
from tests.web.conftest import PASSWORD, Site

ALARM = "agent:buffer_corrupt"
DOC_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


def shot(driver: object, tmp_path: Path, name: str) -> None:
    """Screenshots for docs/web.md: kept in tmp, copied to docs/img when HEADFRAME_DOC_SHOTS=1."""
    path = tmp_path / f"web-{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    assert path.stat().st_size > 5000
    if os.environ.get("HEADFRAME_DOC_SHOTS") == "1":
        DOC_SHOTS.mkdir(exist_ok=True)
        shutil.copy(path, DOC_SHOTS / path.name)


def set_text(driver: object, element: object, text: str) -> None:
    """Replace a textarea's content as a paste would (send_keys of a whole file is slow)."""
    driver.execute_script("arguments[0].value = arguments[1];", element, text)  # type: ignore[attr-defined]


@needs_chromium
def test_log_in_see_live_values_and_acknowledge(site: Site, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "profile") as d:
        wait = waiter(d)
        d.get(site.url + "/")
        wait.until(lambda d: "/login" in d.current_url, message=f"not sent to the login page: {d.current_url}")
        d.find_element(By.ID, "password").send_keys("wrong password!")
        d.find_element(By.ID, "login").click()
        wait.until(lambda d: "密码错误" in d.find_element(By.ID, "message").text, message="no wrong-password message")
        shot(d, tmp_path, "login")

        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login").click()
        value = '[data-point="plc-1.level"] .value'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, value) and d.find_element(By.CSS_SELECTOR, value).text == "1234 m")
        site.image.set_registers("holding", 0, [4321])  # the PLC changes; the page follows
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, value).text == "4321 m")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-point="plc-1.level"] .q-good').text == "good")

        row = f'tr[data-alarm="{ALARM}"]'
        wait.until(lambda d: "raised" in d.find_element(By.CSS_SELECTOR, row).text)
        shot(d, tmp_path, "overview")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"{row} button.op-ack").click() is None)
        wait.until(lambda d: "已完成" in d.find_element(By.ID, "notice").text)
        wait.until(lambda d: "acknowledged" in d.find_element(By.CSS_SELECTOR, row).text)

        # a register probe, as with `headframe probe`
        plc_port = json.loads(site.config.read_text())["devices"][0]["port"]
        d.find_element(By.ID, "probe-host").send_keys("127.0.0.1")
        port_field = d.find_element(By.ID, "probe-port")
        port_field.clear()
        port_field.send_keys(str(plc_port))
        d.find_element(By.ID, "probe-read").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#probe-result [data-address="0"] .value'))
        assert d.find_element(By.CSS_SELECTOR, '#probe-result [data-address="0"] .value').text == "4321"
        shot(d, tmp_path, "probe")

        # the configuration: an invalid change is refused with the loader's words, a valid one applied
        editor = d.find_element(By.ID, "config-text")
        wait.until(lambda d: '"plc-1"' in d.find_element(By.ID, "config-text").get_attribute("value"))
        original = editor.get_attribute("value")
        set_text(d, editor, original.replace('"interval": "200ms"', '"interval": "soon"'))
        d.find_element(By.ID, "config-save").click()
        wait.until(lambda d: "devices[0].groups[0].interval" in d.find_element(By.ID, "config-problems").text)
        assert "未保存" in d.find_element(By.ID, "config-message").text
        assert site.config.read_text() == original
        set_text(d, editor, original.replace('"interval": "200ms"', '"interval": "250ms"'))
        d.find_element(By.ID, "config-check").click()
        wait.until(lambda d: '+          "interval": "250ms"' in d.find_element(By.ID, "config-diff").text)
        shot(d, tmp_path, "config")
        d.find_element(By.ID, "config-save").click()
        wait.until(lambda d: "已保存并生效" in d.find_element(By.ID, "notice").text)
        assert '"interval": "250ms"' in site.config.read_text()

        d.find_element(By.ID, "lang-switch").click()  # English, and it sticks
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#devices h2").text == "Devices")
        d.get(site.url + "/")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#alarms h2").text == "Open alarms")
        shot(d, tmp_path, "overview-en")
        assert d.execute_script("return window.__pwned === undefined")

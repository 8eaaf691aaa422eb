"""The camera view in a real headless Chromium: drag a counting line's end with the mouse, replay the
last minutes with it, save it, and see the reload and the new counts — on a real MJPEG camera."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.chromium import chromium, needs_chromium, waiter
from tests.web.camsite import CAMERA, CamSite
from tests.web.conftest import PASSWORD
from tests.web.test_web_chromium import shot

CAM = f'[data-camera="{CAMERA}"]'
LINE = f'{CAM} g[data-shape="line:mid"]'
ZONE = f'{CAM} g[data-shape="zone:plaza"]'


def counts(d: Any, selector: str) -> tuple[int, int] | None:
    """(in, out) from a row of the page, or None while it is not there."""
    from selenium.webdriver.common.by import By

    cells = d.find_elements(By.CSS_SELECTOR, selector)
    if len(cells) != 2 or not all(c.text.isdigit() for c in cells):
        return None
    return int(cells[0].text), int(cells[1].text)


def point(d: Any, selector: str) -> tuple[float, float]:
    """A handle's position as a share of the picture (what the configuration stores)."""
    return tuple(  # type: ignore[return-value]
        round(v, 4)
        for v in d.execute_script(
            "const c = document.querySelector(arguments[0]); const vb = c.ownerSVGElement.viewBox.baseVal;"
            "return [c.cx.baseVal.value / vb.width, c.cy.baseVal.value / vb.height];",
            selector,
        )
    )


def drag(d: Any, selector: str, fx: float, fy: float) -> None:
    """Drag a handle with the mouse by a share of the picture's width and height, in small steps."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    handle = d.find_element(By.CSS_SELECTOR, selector)
    w, h = d.execute_script("const r = arguments[0].ownerSVGElement.getBoundingClientRect(); return [r.width, r.height];", handle)
    chain = ActionChains(d).click_and_hold(handle)
    for _ in range(4):
        chain.move_by_offset(round(fx * w / 4), round(fy * h / 4))
    chain.release().perform()


@needs_chromium
def test_drag_a_line_replay_save_and_see_new_counts(cam_site: CamSite, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "profile") as d:
        wait = waiter(d, 40)
        d.get(cam_site.url + "/login")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'{CAM}[data-online="yes"] .cam-stage:not(.no-picture)'))
        d.execute_script("arguments[0].scrollIntoView()", d.find_element(By.CSS_SELECTOR, CAM))
        # the camera has counted someone: its last minutes hold crossings to replay
        wait.until(lambda d: sum(counts(d, f'{CAM} .cam-counts tr[data-line="mid"] td[class^="count"]') or (0, 0)) >= 1)

        # a point dragged out of the picture is refused on the page and goes back
        zone_corner = f'{ZONE} circle[data-vertex="1"]'
        assert point(d, zone_corner) == (0.8, 0.3)
        drag(d, zone_corner, 0.3, 0.0)
        wait.until(lambda d: "在画面之外" in d.find_element(By.CSS_SELECTOR, f"{CAM} .cam-message").text)
        assert point(d, zone_corner) == (0.8, 0.3)
        # the refused corner stays selected: add a point after it, then remove it again
        d.find_element(By.CSS_SELECTOR, f"{CAM} button.cam-add-point").click()
        assert len(d.find_elements(By.CSS_SELECTOR, f"{ZONE} circle")) == 5
        assert point(d, f'{ZONE} circle[data-vertex="2"]') == (0.8, 0.65)  # half-way to the next corner
        d.find_element(By.CSS_SELECTOR, f"{CAM} button.cam-remove-point").click()
        assert len(d.find_elements(By.CSS_SELECTOR, f"{ZONE} circle")) == 4
        assert "未保存" not in d.find_element(By.CSS_SELECTOR, f"{CAM} .cam-dirty").text  # back as in the file

        # the line's top end, dragged right and up with the mouse
        top = f'{LINE} circle[data-vertex="0"]'
        drag(d, top, 0.05, -0.05)
        x, y = point(d, top)
        assert abs(x - 0.55) < 0.01 and abs(y - 0.10) < 0.01, (x, y)
        assert "未保存" in d.find_element(By.CSS_SELECTOR, f"{CAM} .cam-dirty").text
        arrow = d.find_element(By.CSS_SELECTOR, f'{LINE} path[data-direction="in"]').get_attribute("d")
        # flip the line's direction (A and B swap: the "in" arrow turns round), and back
        d.find_element(By.CSS_SELECTOR, f"{CAM} button.cam-flip").click()
        assert point(d, top) == (0.5, 1.0)
        assert d.find_element(By.CSS_SELECTOR, f'{LINE} path[data-direction="in"]').get_attribute("d") != arrow
        d.find_element(By.CSS_SELECTOR, f"{CAM} button.cam-flip").click()
        assert point(d, top) == (x, y)
        assert d.find_element(By.CSS_SELECTOR, f'{LINE} path[data-direction="in"]').get_attribute("d") == arrow

        d.find_element(By.CSS_SELECTOR, f"{CAM} button.cam-replay").click()
        row = f'{CAM} .cam-replay-result tr[data-line="mid"]'
        wait.until(lambda d: counts(d, f"{row} td[class^='replay']") is not None)
        assert "已用最近" in d.find_element(By.CSS_SELECTOR, f"{CAM} .replay-summary").text
        edited, saved = counts(d, f"{row} td[class^='replay']"), counts(d, f"{row} td[class^='saved']")
        assert saved is not None and sum(saved) >= 1 and edited is not None, (edited, saved)
        shot(d, tmp_path, "camera")

        d.find_element(By.CSS_SELECTOR, f"{CAM} button.cam-save").click()
        wait.until(lambda d: "已保存并生效" in d.find_element(By.ID, "notice").text)
        text = cam_site.config.read_text()
        assert "this comment must survive the camera editor" in text
        saved_points = YAML(typ="safe").load(text)["cameras"][0]["lines"][0]["points"]
        assert abs(saved_points[0][0] - x) < 1e-3 and abs(saved_points[0][1] - y) < 1e-3 and saved_points[1] == [0.5, 1.0]
        # the reload restarted the camera with the new line; new counts arrive
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'{CAM} .cam-counts h4[data-reloads="1"]'))
        wait.until(lambda d: sum(counts(d, f'{CAM} .cam-counts tr[data-line="mid"] td[class^="count"]') or (0, 0)) >= 1)
        assert d.find_element(By.CSS_SELECTOR, f"{CAM} .cam-dirty").text == ""
        d.execute_script("arguments[0].scrollIntoView({block: 'end'})", d.find_element(By.CSS_SELECTOR, f"{CAM} .cam-counts"))
        shot(d, tmp_path, "camera-saved")

"""The camera view's API against the real agent and a real MJPEG camera: geometry refused in the
technician's language (the server is the authority), forged requests refused, a camera going
offline while someone edits answered with words and the last picture."""

from __future__ import annotations

from typing import Any

from tests.support.wait import wait_until
from tests.web.camsite import CAMERA, LINE_PATH, ZONE_PATH, CamSite, call, logged_in

SNAPSHOT = f"/api/cameras/{CAMERA}/snapshot"
REPLAY = f"/api/cameras/{CAMERA}/replay"
SAVE = f"/api/cameras/{CAMERA}/save"


def line(*points: list[float]) -> dict[str, Any]:
    return {"shapes": [{"path": LINE_PATH, "points": list(points)}]}


def test_bad_geometry_and_forged_requests_are_refused_and_nothing_is_written(cam_site: CamSite) -> None:
    b, token = logged_in(cam_site.url)
    before = cam_site.config.read_bytes()
    _, listing = call(b, "GET", "/api/cameras")
    digest = listing["hash"]

    status, answer = call(b, "POST", REPLAY, token, line([0.5, 0.5], [0.5, 0.5]), lang="en")
    assert status == 422 and "Counting line mid has zero length" in answer["message"], answer
    status, answer = call(b, "POST", SAVE, token, {**line([0.5, 0.5], [0.502, 0.501]), "hash": digest}, lang="zh")
    assert status == 422 and "计数线 mid 长度为零" in answer["message"], answer

    status, answer = call(b, "POST", SAVE, token, {**line([1.2, 0.1], [0.5, 1.0]), "hash": digest}, lang="zh")
    assert status == 422 and "第 1 个点 (1.2, 0.1) 在画面之外" in answer["message"], answer
    status, answer = call(b, "POST", REPLAY, token, line([0.5, 0.1], [0.5, -0.3]), lang="en")
    assert status == 422 and "point 2 (0.5, -0.3) is outside the picture" in answer["message"], answer
    flat = {"shapes": [{"path": ZONE_PATH, "points": [[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]]}], "hash": digest}
    status, answer = call(b, "POST", SAVE, token, flat, lang="en")
    assert status == 422 and "Zone plaza has almost no area" in answer["message"], answer
    # a path the camera does not offer (the page cannot write arbitrary keys into the file)
    status, answer = call(b, "POST", SAVE, token, {"shapes": [{"path": ["web", "port"], "points": [[0, 0]]}], "hash": digest})
    assert status == 422 and "Malformed request" in answer["message"], answer

    # forged: no token, a wrong token, another site's Origin
    good = {**line([0.55, 0.1], [0.5, 1.0]), "hash": digest}
    for forged_token in (None, "not-the-token"):
        status, answer = call(b, "POST", SAVE, forged_token, good, lang="en")
        assert status == 403 and answer["error"] == "forged_request", answer
        status, answer = call(b, "POST", REPLAY, forged_token, good, lang="zh")
        assert status == 403 and "安全令牌" in answer["message"], answer
    status, _, raw = b.call("POST", SAVE, b"{}", {"X-CSRF-Token": token, "Origin": "http://evil.example"})
    assert status == 403 and b"bad_origin" in raw
    assert cam_site.config.read_bytes() == before  # nothing refused was written


def test_camera_offline_while_editing_keeps_the_last_picture_and_says_why(cam_site: CamSite) -> None:
    b, token = logged_in(cam_site.url)

    def picture() -> dict[str, Any] | None:
        _, snap = call(b, "GET", SNAPSHOT)
        return snap if snap["ok"] and snap["image"] else None

    live = wait_until("a live picture", picture, timeout=30)
    assert live["online"] and live["image"].startswith("data:image/jpeg;base64,")

    cam_site.camera.modes["gate"] = "down"  # the camera goes away (cable pulled)

    def offline(lang: str) -> dict[str, Any] | None:
        _, snap = call(b, "GET", SNAPSHOT, lang=lang)
        return snap if not snap["online"] and snap["message"] else None

    snap = wait_until("the page to say the camera is offline", lambda: offline("en"), timeout=30)
    assert f"Camera {CAMERA} is offline" in snap["message"] and "last picture" in snap["message"], snap
    assert snap["image"] and snap["ts"] <= live["ts"] + 30  # the last picture it had, to go on editing
    zh = offline("zh")
    assert zh is not None and "离线" in zh["message"] and "最后画面" in zh["message"], zh
    # editing goes on: a replay over the minutes recorded before the camera went away still answers
    status, answer = call(b, "POST", REPLAY, token, line([0.55, 0.1], [0.5, 1.0]))
    assert status in (200, 409) and answer["message"], answer

    cam_site.camera.modes["gate"] = "normal"
    wait_until("the picture to come back", lambda: (s := picture()) is not None and s["online"], timeout=40)

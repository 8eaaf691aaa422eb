"""Credentials in camera URLs never reach logs, errors, health or records."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest

from buffer.sink import ListSink
from config.redact import redact
from tests.vision.test_runtime import run_for, settings_for
from vision.runtime import Vision
from vision.source import MjpegCapture, _basic_auth

SECRETS = ("admin", "s3cr3t-pw", "tok-123", "k-456")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:s3cr3t-pw@10.0.0.5:554/Streaming/101", "rtsp://***@10.0.0.5:554/Streaming/101"),
        ("rtsp://admin@cam/x", "rtsp://***@cam/x"),
        ("rtsp://admin:p@ss@cam/x", "rtsp://***@cam/x"),  # an unencoded @ in the password
        ("http://cam/video.mjpg?user=admin&password=s3cr3t-pw&res=720", "http://cam/video.mjpg?user=***&password=***&res=720"),
        ("rtsp://cam/live?Token=tok-123;api_key=k-456#auth=x", "rtsp://cam/live?Token=***;api_key=***#auth=***"),
        ("cannot open rtsp://a:b@h/1 and http://c:d@h/2", "cannot open rtsp://***@h/1 and http://***@h/2"),
        ("http://cam/video.mjpg", "http://cam/video.mjpg"),
        ("/srv/media/key=1.avi", "/srv/media/key=1.avi"),
        ("usb:0", "usb:0"),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected
    assert redact(expected) == expected


def test_credentials_to_a_closed_port_stay_out_of_health_records_and_logs(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    url = "rtsp://admin:s3cr3t-pw@127.0.0.1:9/live?token=tok-123&api_key=k-456"
    sink = ListSink()
    vision = Vision(settings_for(url, zones=[], fps=2), sink)

    def lost_seen() -> bool:  # waits on the condition: a loaded machine starts the worker slowly
        return any(r.payload.get("kind") == "signal_lost" for r in sink.records) and bool(
            vision.health()["cameras"]["cam-1"]["stream_error"]
        )

    asyncio.run(run_for(vision, 30, until=lost_seen))
    health = vision.health()["cameras"]["cam-1"]
    where = "rtsp://***@127.0.0.1:9/live?token=***&api_key=***"
    assert health["stream_error"] == f"cannot open {where}", health
    lost = [r.payload for r in sink.records if r.payload.get("kind") == "signal_lost"]
    assert lost and lost[0]["reason"] == f"cannot open {where}"
    worker_lines = [r.getMessage() for r in caplog.records if r.name == "headframe.vision.worker"]
    assert any(line.startswith("camera cam-1: stream: cannot open " + where) for line in worker_lines), worker_lines
    out, err = capfd.readouterr()
    everything = "\n".join([json.dumps(health), *(json.dumps(r.payload) for r in sink.records), caplog.text, out, err])
    for secret in SECRETS:
        assert secret not in everything, secret


def test_mjpeg_credentials_go_as_basic_auth_not_in_the_url() -> None:
    plain, headers = _basic_auth("http://admin:s3cr3t%40pw@127.0.0.1:8080/video.mjpg?res=720")
    assert plain == "http://127.0.0.1:8080/video.mjpg?res=720"
    assert base64.b64decode(headers["Authorization"].removeprefix("Basic ")) == b"admin:s3cr3t@pw"
    assert _basic_auth("http://127.0.0.1/x.mjpg") == ("http://127.0.0.1/x.mjpg", {})
    # a malformed URL with credentials is "cannot open", not an exception quoting the URL
    assert not MjpegCapture("http://admin:s3cr3t-pw@127.0.0.1:notaport/x", timeout=1).isOpened()


def test_config_error_quoting_a_camera_entry_hides_its_credentials(tmp_path) -> None:
    """A config error quotes the offending input; a camera URL in it must not carry its password."""
    from config import ConfigError, load_settings

    cfg = tmp_path / "h.yaml"
    cfg.write_text(
        "gateway: {site: s, id: g}\nbuffer: {path: %s}\nuplink: {host: 127.0.0.1}\n"
        'cameras:\n  - "rtsp://admin:s3cret@10.0.0.1/stream"\n' % (tmp_path / "b.db")
    )
    try:
        load_settings(cfg)
    except ConfigError as exc:
        text = str(exc)
    else:
        raise AssertionError("a camera given as a bare string must be rejected")
    assert "cameras[0]" in text and "rtsp://***@10.0.0.1/stream" in text
    assert "s3cret" not in text

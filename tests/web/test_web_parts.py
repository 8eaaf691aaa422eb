"""The page's parts without a server: its settings refuse unsafe setups; sessions expire when idle."""

from __future__ import annotations

import pytest

from agent.web.i18n import MESSAGES, choose
from agent.web.passwords import hash_password, verify_password
from agent.web.sessions import LoginLimiter, Sessions, csrf_ok
from config import ConfigError, load_settings_text

BASE = "gateway: {site: s, id: g}\n"


def test_settings_refuse_a_page_without_password_or_in_clear_off_loopback() -> None:
    with pytest.raises(ConfigError, match="password_file"):
        load_settings_text(BASE + "web: {enabled: true}\n")
    with pytest.raises(ConfigError, match="tls"):
        load_settings_text(BASE + "web: {enabled: true, listen: 0.0.0.0, password_file: /etc/hf/web.pw}\n")
    ok = load_settings_text(BASE + "web: {enabled: true, password_file: /etc/hf/web.pw}\n")
    assert ok.web.listen == "127.0.0.1" and ok.web.language == "zh"
    assert load_settings_text(BASE).web.enabled is False  # off by default


def test_sessions_expire_when_idle_and_csrf_is_per_session() -> None:
    sessions = Sessions(idle_s=60)
    s = sessions.create("technician", "10.0.0.5", now=0.0)
    assert sessions.get(s.id, now=59.0) is s  # a request restarts the idle time
    assert sessions.get(s.id, now=118.0) is s
    assert sessions.get(s.id, now=179.0) is None
    other = sessions.create("technician", "10.0.0.5", now=200.0)
    assert csrf_ok(other, other.csrf) and not csrf_ok(other, s.csrf) and not csrf_ok(other, None)


def test_login_limiter_waits_out_the_window() -> None:
    limiter = LoginLimiter(max_failed=3, window_s=100)
    for t in (0.0, 1.0, 2.0):
        limiter.failed("a", now=t)
    assert limiter.blocked_for("a", now=3.0) == pytest.approx(99.0)
    assert limiter.blocked_for("b", now=3.0) == 0.0
    assert limiter.blocked_for("a", now=103.0) == 0.0


def test_password_hash_checks_and_rejects_garbage() -> None:
    stored = hash_password("a long password")
    assert verify_password("a long password", stored) and not verify_password("a long passwore", stored)
    assert not verify_password("x", "scrypt$1$2$3$!!$??") and not verify_password("x", "plain text")


def test_every_message_has_both_languages_and_the_browser_choice_wins() -> None:
    assert all(set(by_lang) == {"zh", "en"} and all(by_lang.values()) for by_lang in MESSAGES.values())
    assert choose(None, None, "en-US,en;q=0.9", "zh") == "en"
    assert choose("zh", "en", "en-US", "en") == "zh"
    assert choose(None, None, None, "zh") == "zh"

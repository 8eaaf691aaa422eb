"""Debian's Chromium, headless, driven by Selenium (installed by ``scripts/setup.sh test``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HAVE_CHROMIUM = bool(shutil.which("chromium") and shutil.which("chromedriver"))
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM, reason="Debian chromium and chromium-driver are installed by scripts/setup.sh test"
)


def waiter(driver: Any, timeout: float = 20) -> Any:
    """A WebDriverWait that retries when the page re-renders under it.

    The pages replace their rows as live values arrive, and a form post navigates; an element
    found a moment ago can be stale by the time its text is read. That is not a failure, so
    the wait tries again (a timeout still fails the test).
    """
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


@contextmanager
def chromium(profile: Path, lang: str = "zh-CN") -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--lang={lang}",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"intl.accept_languages": lang})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        yield driver
    finally:
        driver.quit()

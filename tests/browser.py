"""Helpers for the browser tests: a live gateway process and Debian's headless Chromium.

The browser is the machine's own (``apt-get install chromium chromium-driver``, which ``make test``
does when they are missing), driven by Selenium through chromedriver: nothing is downloaded. When
either binary is missing the tests *fail* with the install hint — CI must run them, never skip.
The gateway runs as ``python run.py serve`` in its own process, as in production, so the
synchronous driver never blocks the server's event loop.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ROOT
from tests.gateway_process import GatewayProcess

__all__ = [
    "ARTIFACTS",
    "LiveServer",
    "assert_no_severe_logs",
    "chrome",
    "save_screenshot",
    "wait_for",
]

CHROMIUM = os.environ.get("SMS_EDGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SMS_EDGE_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
# What works headless on this machine: no sandbox as root, no GPU, and no calls home (the network
# is closed, and every refused connection would be noise in the console log).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=zh-CN",
)


def LiveServer(workdir: Path, document: dict[str, Any]) -> GatewayProcess:
    """``python run.py serve`` on a free loopback port, with the given config document."""
    return GatewayProcess(document, workdir, name="pages")


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(
            f"browser tests need {', '.join(missing)}: install Debian's chromium and chromium-driver "
            "(`make test-packages`, or `apt-get install chromium chromium-driver`)",
            pytrace=False,
        )


@contextmanager
def chrome() -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (its own empty profile) that keeps its console log for the test."""
    _require_browser()
    profile = tempfile.mkdtemp(prefix="smsedge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: webdriver.Chrome, condition, timeout: float = 10, message: str = "") -> Any:
    """Poll ``condition(driver)`` until truthy; a table re-rendered mid-read is just polled again."""
    waiting = WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(condition, message)


def assert_no_severe_logs(driver: webdriver.Chrome, allowed: Iterable[str] = ()) -> None:
    """No error in the browser console since the last call, except ``allowed`` patterns.

    Chromium logs a failed request (a 401 the test provoked, say) as SEVERE too; those are the only
    entries a test may allow, by pattern. A CSP violation or a script error always fails.
    """
    patterns = [re.compile(pattern) for pattern in allowed]
    severe = [
        entry["message"] for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(p.search(entry["message"]) for p in patterns)
    ]
    assert severe == [], f"browser console errors: {severe}"


def save_screenshot(driver: webdriver.Chrome, name: str, full_page: bool = False) -> Path:
    """A PNG under test-artifacts/ (gitignored); the whole page when ``full_page``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if not full_page:
        driver.save_screenshot(str(path))
        return path
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    })
    path.write_bytes(base64.b64decode(shot["data"]))
    return path

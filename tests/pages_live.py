"""The live gateway the page tests drive, with records of both outcomes, and signing in to /console.

Shared by the page tests (``test_pages_browser.py``) and the accessibility and layout tests
(``test_pages_a11y_browser.py``), which take its fixtures ``live`` (one seeded gateway for the
module: the mock carrier, plus ``flaky``, a mock that refuses everything) and ``browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import LiveServer, chrome
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, default_document, without_limits

__all__ = ["REFUSED", "SEEDED_FAILED", "SEEDED_SUCCESS", "browser", "live", "seeded_gateway", "sign_in"]

SEEDED_SUCCESS = 23  # more than two pages of 10
SEEDED_FAILED = 3
# The only console errors a test may provoke on purpose: the API refusing a request.
REFUSED = r"Failed to load resource: the server responded with a status of (400|401|502)"


def seeded_gateway(workdir: Path, admin_token: str | None = None) -> LiveServer:
    """A started gateway with the seeded records (and /admin, given a token); the caller stops it."""
    document = without_limits(default_document())
    if admin_token:
        document["admin"] = {"tokens": [{"name": "ops-layout", "token": admin_token}]}
    document["ratelimit"]["account"] = {"rate": 250, "burst": 500}
    document["ratelimit"]["phone"] = [{"limit": 50, "seconds": 3600}]
    document["providers"]["backends"]["flaky"] = {"plugin": "mock", "price": 0.04, "fail_rate": 1.0}
    document["store"]["path"] = str(workdir / "pages.db")
    server = LiveServer(workdir, document)
    try:
        _seed_records(server)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """One seeded gateway for the test module that imports this fixture."""
    server = seeded_gateway(tmp_path_factory.mktemp("pages"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium for each test."""
    with chrome() as driver:
        yield driver


def _seed_records(server: LiveServer) -> None:
    send = f"{server.url}/api/sms/send"
    for index in range(SEEDED_SUCCESS):
        body = {"phone": f"1390000{index:04d}", "template_id": "123456", "params": {"code": "1234"}}
        assert requests.post(send, json=body, headers=DEMO_HEADERS, timeout=10).status_code == 200
    for index in range(SEEDED_FAILED):
        body = {"phone": f"1370000{index:04d}", "template_id": "123456", "provider": "flaky"}
        assert requests.post(send, json=body, headers=DEMO_HEADERS, timeout=10).status_code == 502


def sign_in(driver, live: LiveServer, secret: str = DEMO_SECRET) -> None:
    """Open /console and submit the sign-in form with the demo key."""
    driver.get(f"{live.url}/console")
    driver.find_element(By.NAME, "api_key").send_keys(DEMO_KEY)
    driver.find_element(By.NAME, "api_secret").send_keys(secret)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()

"""The /status charts in a real headless Chromium, after some traffic through a live gateway.

Requests and server errors (502s from ``flaky``, a mock that refuses everything) and the carrier
calls behind them land in the current minute; the page must draw all three charts as inline SVG
under the strict CSP, with a caption giving the numbers. The screenshot goes to test-artifacts/.
"""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By

from tests.browser import LiveServer, assert_no_severe_logs, chrome, save_screenshot
from tests.conftest import DEMO_HEADERS, default_document, without_limits

SENT, REFUSED = 6, 2


def _traffic(url: str) -> None:
    send = f"{url}/api/sms/send"
    for index in range(SENT):
        body = {"phone": f"1390000{index:04d}", "template_id": "123456"}
        assert requests.post(send, json=body, headers=DEMO_HEADERS, timeout=10).status_code == 200
    for index in range(REFUSED):
        body = {"phone": f"1370000{index:04d}", "template_id": "123456", "provider": "flaky"}
        assert requests.post(send, json=body, headers=DEMO_HEADERS, timeout=10).status_code == 502


def _chart(driver, key: str) -> dict:
    figure = driver.find_element(By.ID, f"chart-{key}")
    svg = figure.find_element(By.TAG_NAME, "svg")
    return {
        "title": svg.find_element(By.TAG_NAME, "title").get_attribute("textContent"),
        "desc": svg.find_element(By.TAG_NAME, "desc").get_attribute("textContent"),
        "path": svg.find_element(By.CSS_SELECTOR, "path.series").get_attribute("d"),
        "points": len(svg.find_elements(By.CSS_SELECTOR, "circle.point")),
        "latest": figure.find_element(By.CLASS_NAME, "latest").text,
        "total": figure.find_element(By.CLASS_NAME, "total").text,
        "width": svg.size["width"],
        "labelled": svg.get_attribute("aria-labelledby"),
    }


def test_status_page_draws_requests_errors_and_latency_charts(tmp_path):
    document = without_limits(default_document())
    document["ratelimit"]["phone"] = [{"limit": 50, "seconds": 3600}]
    document["providers"]["backends"]["flaky"] = {"plugin": "mock", "price": 0.04, "fail_rate": 1.0}
    document["store"]["path"] = str(tmp_path / "charts.db")
    server = LiveServer(tmp_path, document)
    try:
        _traffic(server.url)
        with chrome() as driver:
            driver.get(f"{server.url}/status")
            charts = {key: _chart(driver, key) for key in ("requests", "errors", "latency")}
            save_screenshot(driver, "status-charts", full_page=True)
            assert_no_severe_logs(driver)
    finally:
        server.stop()
    for key, chart in charts.items():
        assert chart["title"] and chart["desc"] and chart["width"] > 100, key
        assert chart["labelled"] == f"chart-{key}-title chart-{key}-desc"
    requests_, errors, latency = charts["requests"], charts["errors"], charts["latency"]
    # One point a minute over 30 minutes: a line through all of them.
    assert requests_["points"] == errors["points"] == 30
    assert requests_["path"].count("L") == errors["path"].count("L") == 29
    # Totals over the window (the traffic may straddle a minute boundary): at least the sends,
    # plus whatever /readyz polling the start took; exactly the refused ones as errors.
    assert int(requests_["total"].split()[0]) >= SENT + REFUSED
    assert errors["total"] == f"{REFUSED} 次"
    # Carrier calls happened only in the last minute or two: a point for each, the rest blank.
    assert 1 <= latency["points"] <= 2 and latency["path"].startswith("M")
    assert latency["total"].endswith(" ms")

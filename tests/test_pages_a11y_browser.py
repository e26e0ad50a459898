"""Accessibility and layout of the pages in every state, in headless Chromium with axe-core.

Each state is checked twice: on the desktop window and on a 375 px phone (``narrow``), where the
page must reflow (no sideways scroll, WCAG 1.4.10) and axe runs again (a table that only scrolls
on a phone must still be reachable by keyboard). Screenshots of both go to test-artifacts/. Then
what axe cannot see: the skip link, where focus goes on signing in and out, the zone on every
time, and /status updating its figures in place (no reload, WCAG 2.2.1) until paused.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests import pages_live
from tests.browser import (
    MOBILE_WIDTH,
    assert_accessible_state,
    assert_no_severe_logs,
    narrow,
    save_screenshot,
    wait_for,
)
from tests.conftest import DEMO_HEADERS
from tests.pages_live import REFUSED, sign_in

live, browser = pages_live.live, pages_live.browser  # the fixtures: one seeded gateway, a fresh browser
PAGES = {"docs": "/", "console": "/console", "status": "/status"}
# The demo config's server.timezone, as the pages show it.
ZONE, OFFSET = "Asia/Shanghai", "+08:00"


def _shown(element_id: str):
    return lambda d: d.find_element(By.ID, element_id).is_displayed()


def _focused_id(driver) -> str:
    return driver.execute_script("return document.activeElement.id")


@pytest.mark.parametrize("name", ["docs", "status"])
def test_read_only_pages(browser, live, name):
    browser.get(f"{live.url}{PAGES[name]}")
    assert_accessible_state(browser, name)
    with narrow(browser):
        save_screenshot(browser, f"a11y-{name}-{MOBILE_WIDTH}-full", full_page=True)
        # A wide table on a phone: it scrolls inside its region, the page does not.
        table = browser.find_element(By.CSS_SELECTOR, "main table")
        browser.execute_script("arguments[0].scrollIntoView()", table)
        save_screenshot(browser, f"a11y-{name}-{MOBILE_WIDTH}-table")
    assert_no_severe_logs(browser)


def test_console_signed_out_and_refused(browser, live):
    browser.get(f"{live.url}/console")
    assert_accessible_state(browser, "console-signed-out")
    browser.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait_for(browser, _shown("signin-error"), message="empty form: no error")
    assert_accessible_state(browser, "console-signin-empty")
    sign_in(browser, live, secret="not-the-secret")
    wait_for(browser, lambda d: "UNAUTHORIZED" in d.find_element(By.ID, "signin-error").text)
    assert_accessible_state(browser, "console-signin-refused")
    assert_no_severe_logs(browser, allowed=[REFUSED])


def _records_shown(driver) -> bool:
    return len(driver.find_elements(By.CSS_SELECTOR, "#records tbody tr[data-status]")) == 10


def test_console_signed_in_sent_its_errors_and_signed_out(browser, live):
    sign_in(browser, live)
    wait_for(browser, _records_shown, message="no records")
    assert_accessible_state(browser, "console-records")
    browser.find_element(By.NAME, "phone").send_keys("13912340000")
    browser.find_element(By.ID, "send-submit").click()
    wait_for(browser, lambda d: "短信发送成功" in d.find_element(By.ID, "send-result").text)
    assert_accessible_state(browser, "console-sent")
    browser.find_element(By.NAME, "start_time").send_keys("yesterday")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(browser, _shown("records-error"), message="no records error")
    browser.find_element(By.NAME, "phone").send_keys("12345")
    browser.find_element(By.ID, "send-submit").click()
    wait_for(browser, lambda d: "INVALID_PARAMS" in d.find_element(By.ID, "send-result").text)
    assert_accessible_state(browser, "console-errors")
    browser.find_element(By.ID, "signout").click()
    wait_for(browser, _shown("signin-panel"))
    assert_accessible_state(browser, "console-signed-out-again")
    assert_no_severe_logs(browser, allowed=[REFUSED])


@pytest.mark.parametrize("name", list(PAGES))
def test_a_skip_link_leads_to_main(browser, live, name):
    browser.get(f"{live.url}{PAGES[name]}")
    link = browser.find_element(By.CSS_SELECTOR, "body > a:first-child")
    assert link.get_attribute("href").endswith("#main") and link.text == ""  # off screen until focused
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element == link
    assert link.text == "跳到主要内容" and link.location["y"] >= 0 and link.is_displayed()
    save_screenshot(browser, f"a11y-{name}-skip-link")
    link.send_keys(Keys.ENTER)
    assert _focused_id(browser) == "main"
    assert browser.switch_to.active_element.tag_name == "main"


def test_console_focus_follows_sign_in_and_out(browser, live):
    sign_in(browser, live)
    wait_for(browser, _shown("dashboard"))
    wait_for(browser, lambda d: _focused_id(d) == "account-title", message="focus not on the account heading")
    browser.find_element(By.ID, "signout").click()
    wait_for(browser, _shown("signin-panel"))
    assert _focused_id(browser) == "api_key"


def test_console_times_carry_their_zone(browser, live):
    sign_in(browser, live)
    wait_for(browser, _records_shown, message="no records")
    header = browser.find_elements(By.CSS_SELECTOR, "#records thead th")[5].text
    assert header == f"发送时间({ZONE})"
    for stamp in browser.find_elements(By.CSS_SELECTOR, "#records tbody time"):
        text, instant = stamp.text, stamp.get_attribute("datetime")
        assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {re.escape(OFFSET)}", text), text
        assert instant == text[:19].replace(" ", "T") + OFFSET
    assert len(browser.find_elements(By.CSS_SELECTOR, "#records tbody time")) == 10


def _updated(driver) -> str:
    return driver.find_element(By.ID, "updated-at").text


def test_status_refreshes_in_place_until_paused(browser, live):
    browser.get(f"{live.url}/status?refresh=1")
    first = _updated(browser)
    assert re.fullmatch(rf"\d\d:\d\d:\d\d {ZONE} \(UTC{re.escape(OFFSET)}\)", first), first
    assert browser.find_element(By.ID, "updated").get_attribute("aria-live") == "polite"
    assert not browser.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    browser.execute_script("window.sameDocument = 'kept'")
    wait_for(browser, lambda d: _updated(d) != first, timeout=6, message="figures never refreshed")
    assert browser.execute_script("return window.sameDocument") == "kept"  # no page load
    toggle = browser.find_element(By.ID, "refresh-toggle")
    assert toggle.tag_name == "button" and toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert "自动刷新已暂停" in browser.find_element(By.ID, "updated").text
    time.sleep(1.2)  # a refresh in flight when the button was pressed may still land
    paused = _updated(browser)
    time.sleep(2.5)
    assert _updated(browser) == paused, "refreshed while paused"
    assert_accessible_state(browser, "status-paused")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    wait_for(browser, lambda d: _updated(d) != paused, timeout=6, message="did not resume")
    assert browser.execute_script("return window.sameDocument") == "kept"
    assert_no_severe_logs(browser)


def test_status_says_when_an_update_failed(browser, live):
    browser.get(f"{live.url}/status?refresh=1")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/status.json"]})
    wait_for(
        browser,
        lambda d: "更新失败" in d.find_element(By.ID, "refresh-note").text,
        timeout=6,
        message="no failure shown",
    )
    note = browser.find_element(By.ID, "refresh-note")
    assert "更新失败(网络错误),1 秒后重试" in note.text and note.get_attribute("class") == "error"
    assert_accessible_state(browser, "status-update-failed")
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "refresh-note").text == "",
        timeout=6,
        message="the failure note stayed after a good update",
    )
    assert_no_severe_logs(browser, allowed=[r"status\.json.*ERR_BLOCKED_BY_CLIENT"])


def _default_route_taken(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, '#routes tr[data-route="default"] .taken').text


def test_status_route_counts_refresh_in_place(browser, live):
    browser.get(f"{live.url}/status?refresh=1")
    browser.execute_script("window.sameDocument = 'kept'")
    before = _default_route_taken(browser)
    sent = requests.post(
        f"{live.url}/api/sms/send",
        headers=DEMO_HEADERS,
        timeout=10,
        json={"phone": "13700137000", "template_id": "123456", "params": {"code": "1"}},
    )
    assert sent.status_code == 200, sent.text
    wait_for(
        browser,
        lambda d: _default_route_taken(d) != before,
        timeout=6,
        message="the routes table never refreshed",
    )
    count = int(re.search(r"mock (\d+)", _default_route_taken(browser)).group(1))
    assert count == int(re.search(r"mock (\d+)", before).group(1)) + 1
    assert browser.execute_script("return window.sameDocument") == "kept"
    assert_no_severe_logs(browser)

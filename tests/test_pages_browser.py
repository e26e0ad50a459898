"""The three pages in a real headless Chromium against a live gateway process.

One gateway serves the module: the mock carrier, plus ``flaky`` (a mock that refuses everything)
so records of both outcomes exist. Each test has its own fresh browser profile. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal, InvalidOperation

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import visibility_of_element_located
from selenium.webdriver.support.ui import Select

from tests import pages_live
from tests.browser import LiveServer, assert_no_severe_logs, save_screenshot, wait_for
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, default_document, without_limits
from tests.pages_live import REFUSED, SEEDED_FAILED, SEEDED_SUCCESS, sign_in
from tests.seed import run_curl, run_python, with_demo_credentials

live, browser = pages_live.live, pages_live.browser  # the fixtures: one seeded gateway, a fresh browser
FULL_NUMBER = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
MASKED = re.compile(r"^1[3-9][0-9]\*{4}[0-9]{4}$")


def _api(live: LiveServer, path: str, **params: str) -> dict:
    response = requests.get(f"{live.url}{path}", params=params, headers=DEMO_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _rows(driver) -> list[dict[str, str]]:
    rows = []
    for row in driver.find_elements(By.CSS_SELECTOR, "#records tbody tr[data-status]"):
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        rows.append(
            {
                "id": cells[0],
                "phone": cells[1],
                "status": row.get_attribute("data-status"),
                "provider": cells[4],
                "created_at": cells[5].rsplit(" ", 1)[0],
                "zone": cells[5].rsplit(" ", 1)[-1],
            }
        )
    return rows


def _wait_page_info(driver, text: str) -> None:
    wait_for(
        driver,
        lambda d: text in d.find_element(By.ID, "page-info").text,
        message=f"page info never showed {text!r}",
    )


# --- the docs page -----------------------------------------------------------------------------


def test_docs_page_shows_this_gateway(browser, live):
    browser.get(f"{live.url}/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "API 接口文档"
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "main h2")]
    for title in (
        "认证方式",
        "发送短信",
        "批量发送短信",
        "查询发送记录",
        "查询账户信息",
        "错误码说明",
        "SDK & 示例代码",
    ):
        assert title in headings
    assert browser.find_element(By.ID, "base-url").text == live.url
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "服务商:mock / flaky,默认使用系统配置(mock)" in text
    assert "手机号数组,最多100个" in text
    assert "每页数量,默认10,最大100" in text
    assert "每秒补充 250 个,容量 500 个" in browser.find_element(By.ID, "limit-account").text
    assert "1 小时内最多 50 条" in text
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "figure.code figcaption span")]
    assert {"cURL", "PHP", "Python", "JavaScript", "JSON - 成功响应", "JSON - 失败响应"} <= set(captions)
    php = browser.find_element(By.CSS_SELECTOR, "code.lang-php").text
    assert php.startswith("<?php\n$apiKey = 'your_api_key';") and php.endswith("print_r($result);")
    button = browser.find_element(By.CSS_SELECTOR, "button[data-copy]")
    button.click()
    wait_for(browser, lambda d: button.text != "复制", message="copy button did nothing")
    assert DEMO_SECRET not in browser.page_source
    save_screenshot(browser, "docs", full_page=True)
    browser.execute_script("window.scrollTo(0, 0)")
    save_screenshot(browser, "docs-top")
    browser.find_element(By.CSS_SELECTOR, "a[href='#sdk']").click()
    save_screenshot(browser, "docs-sdk")
    assert_no_severe_logs(browser)


def _examples(browser, live: LiveServer, caption: str) -> list[str]:
    """The examples under ``caption`` as a reader copies them (the copy button's textContent)."""
    browser.get(f"{live.url}/")
    return [
        figure.find_element(By.CSS_SELECTOR, "pre code").get_attribute("textContent")
        for figure in browser.find_elements(By.CSS_SELECTOR, "figure.code")
        if figure.find_element(By.CSS_SELECTOR, "figcaption span").text == caption
    ]


def test_docs_curl_examples_run_against_the_live_gateway(browser, live):
    examples = _examples(browser, live, "cURL")
    assert len(examples) == 3  # send (in 认证方式), records, account info
    assert examples[0].startswith(f'curl -X POST "{live.url}/api/sms/send"')
    bodies = [
        run_curl(with_demo_credentials(example), "--silent", "--show-error", "--fail-with-body")
        for example in examples
    ]
    assert all(body["success"] is True for body in bodies)
    send, records, account = bodies
    assert send["message"] == "短信发送成功"
    assert send["data"]["phone"] == "138****8000"
    assert records["data"]["records"][0]["phone"] == "138****8000"
    assert set(account["data"]) == {
        "balance",
        "total_sent",
        "today_sent",
        "verification_status",
        "daily_limit",  # quotas (issue 27): beside the seed's fields
        "monthly_sent",
        "monthly_limit",
    }


def test_docs_python_example_runs_against_the_live_gateway(browser, live):
    [example] = _examples(browser, live, "Python")
    printed = run_python(with_demo_credentials(example))
    assert "'success': True" in printed
    assert "'phone': '138****8000'" in printed


# --- the console -------------------------------------------------------------------------------


def test_console_shows_a_refusedsign_in(browser, live):
    sign_in(browser, live, secret="not-the-secret")
    error = _shown(browser, "signin-error")
    assert "认证失败" in error.text and "UNAUTHORIZED" in error.text
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    assert browser.execute_script("return sessionStorage.length") == 0
    save_screenshot(browser, "console-signin-refused")
    assert_no_severe_logs(browser, allowed=[REFUSED])


def test_console_signs_in_pages_and_filters(browser, live):
    sign_in(browser, live)
    wait_for(browser, lambda d: d.find_element(By.ID, "dashboard").is_displayed(), message="no dashboard")
    account = _api(live, "/api/account/info")
    wait_for(browser, lambda d: d.find_element(By.ID, "balance").text == f"{account['balance']:.2f}")
    assert browser.find_element(By.ID, "total_sent").text == str(account["total_sent"])
    assert browser.find_element(By.ID, "today_sent").text == str(account["today_sent"])
    assert "approved" in browser.find_element(By.ID, "verification_status").text
    # The secret is in this tab's sessionStorage only: no localStorage, no cookie.
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.execute_script("return document.cookie") == ""
    assert browser.get_cookies() == []

    total = _api(live, "/api/sms/records")["total"]
    pages = -(-total // 10)
    _wait_page_info(browser, f"第 1 / {pages} 页 · 共 {total} 条")
    first = _rows(browser)
    assert len(first) == 10
    assert all(MASKED.match(row["phone"]) for row in first)
    assert [int(row["id"]) for row in first] == sorted((int(row["id"]) for row in first), reverse=True)
    save_screenshot(browser, "console-records")
    browser.find_element(By.ID, "next-page").click()
    _wait_page_info(browser, f"第 2 / {pages} 页")
    second = _rows(browser)
    assert len(second) == 10 and not {r["id"] for r in first} & {r["id"] for r in second}
    browser.find_element(By.ID, "prev-page").click()
    _wait_page_info(browser, f"第 1 / {pages} 页")
    assert browser.find_element(By.ID, "prev-page").get_attribute("disabled") is not None

    Select(browser.find_element(By.NAME, "status")).select_by_value("failed")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    failed_total = _api(live, "/api/sms/records", status="failed")["total"]
    _wait_page_info(browser, f"共 {failed_total} 条")
    failed = _rows(browser)
    assert len(failed) == failed_total >= SEEDED_FAILED
    assert {row["status"] for row in failed} == {"failed"}
    assert {row["provider"] for row in failed} == {"flaky"}

    newest = first[0]["created_at"]
    _type(browser, "start_time", newest)
    _type(browser, "end_time", newest)
    Select(browser.find_element(By.NAME, "status")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    expected = _api(live, "/api/sms/records", start_time=newest, end_time=newest)["total"]
    assert expected >= 1
    _wait_page_info(browser, f"共 {expected} 条")
    assert {row["created_at"] for row in _rows(browser)} == {newest}
    save_screenshot(browser, "console-filtered")
    assert_no_severe_logs(browser)

    _type(browser, "start_time", "yesterday")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    error = _shown(browser, "records-error")
    assert "start_time 格式必须为 YYYY-MM-DD HH:mm:ss" in error.text and "INVALID_PARAMS" in error.text
    assert_no_severe_logs(browser, allowed=[REFUSED])

    browser.find_element(By.CSS_SELECTOR, "#filters button[type=reset]").click()
    _wait_page_info(browser, f"共 {total} 条")
    assert not browser.find_element(By.ID, "records-error").is_displayed()


def _shown(driver, element_id: str) -> WebElement:
    """The element once it is displayed (the page shows errors and results by unhiding them)."""
    return wait_for(driver, visibility_of_element_located((By.ID, element_id)))


def _type(driver, name: str, text: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(text)


def _balance(driver) -> Decimal | None:
    """The account card's balance, or None while it is being redrawn."""
    try:
        return Decimal(driver.find_element(By.ID, "balance").text)
    except InvalidOperation:
        return None


def test_console_sends_a_test_message(browser, live):
    sign_in(browser, live)
    wait_for(browser, lambda d: d.find_element(By.ID, "balance").text != "—", message="no account")
    balance = Decimal(browser.find_element(By.ID, "balance").text)
    _type(browser, "phone", "13912345678")
    _type(browser, "params", '{"code": "4321"}')
    browser.find_element(By.ID, "send-submit").click()
    result = _shown(browser, "send-result")
    assert "短信发送成功" in result.text and "139****5678" in result.text
    assert "success" in result.get_attribute("class")
    wait_for(
        browser,
        lambda d: _rows(d) and _rows(d)[0]["phone"] == "139****5678",
        message="the new record never showed",
    )
    wait_for(browser, lambda d: _balance(d) == balance - Decimal("0.05"))
    assert browser.find_element(By.NAME, "phone").get_attribute("value") == ""
    assert not FULL_NUMBER.search(browser.find_element(By.ID, "dashboard").text)
    # The button was busy while the send was out, but keyboard focus stayed on it (a disabled
    # button would have dropped it to <body>).
    assert browser.execute_script("return document.activeElement.id") == "send-submit"
    assert browser.find_element(By.ID, "send-submit").get_attribute("aria-disabled") is None
    save_screenshot(browser, "console-sent")
    assert_no_severe_logs(browser)

    # Refusals from the API are shown, in its words: a bad number, then a carrier that refuses.
    _type(browser, "phone", "12345")
    browser.find_element(By.ID, "send-submit").click()
    wait_for(browser, lambda d: "INVALID_PARAMS" in d.find_element(By.ID, "send-result").text)
    assert "手机号无效" in browser.find_element(By.ID, "send-result").text
    _type(browser, "phone", "13912345679")
    Select(browser.find_element(By.NAME, "provider")).select_by_value("flaky")
    browser.find_element(By.ID, "send-submit").click()
    wait_for(browser, lambda d: "PROVIDER_ERROR" in d.find_element(By.ID, "send-result").text)
    assert "error" in browser.find_element(By.ID, "send-result").get_attribute("class")
    _type(browser, "params", "not json")
    browser.find_element(By.ID, "send-submit").click()
    wait_for(browser, lambda d: "模板参数必须是合法的 JSON" in d.find_element(By.ID, "send-result").text)
    save_screenshot(browser, "console-send-refused")
    assert_no_severe_logs(browser, allowed=[REFUSED])


def test_console_resumes_in_the_tab_and_forgets_on_sign_out(browser, live):
    sign_in(browser, live)
    wait_for(browser, lambda d: d.find_element(By.ID, "dashboard").is_displayed())
    browser.refresh()
    wait_for(browser, lambda d: d.find_element(By.ID, "dashboard").is_displayed(), message="not resumed")
    browser.find_element(By.ID, "signout").click()
    assert browser.find_element(By.ID, "signin-panel").is_displayed()
    assert browser.execute_script("return sessionStorage.length + localStorage.length") == 0
    assert browser.find_element(By.NAME, "api_secret").get_attribute("value") == ""
    assert_no_severe_logs(browser)


# --- the status page ---------------------------------------------------------------------------


def test_status_page_shows_carriers_and_health(browser, live):
    browser.get(f"{live.url}/status")
    carriers = {
        row.get_attribute("data-carrier"): row
        for row in browser.find_elements(By.CSS_SELECTOR, "#carriers tbody tr")
    }
    assert set(carriers) == {"mock", "flaky"}
    mock, flaky = carriers["mock"], carriers["flaky"]
    assert mock.find_element(By.CLASS_NAME, "success-rate").text == "100.0%"
    assert int(mock.find_element(By.CLASS_NAME, "calls").text) >= SEEDED_SUCCESS
    assert mock.find_element(By.CLASS_NAME, "latency").text.endswith(" ms")
    assert flaky.find_element(By.CLASS_NAME, "success-rate").text == "0.0%"
    assert "closed" in mock.find_element(By.CLASS_NAME, "circuit").text
    for dependency in ("store", "ratelimit"):
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-dependency={dependency}]")
        assert "正常" in row.text
    assert browser.find_element(By.ID, "build-version").text
    html = browser.page_source
    assert not FULL_NUMBER.search(html) and DEMO_KEY not in html and DEMO_SECRET not in html
    save_screenshot(browser, "status", full_page=True)
    assert_no_severe_logs(browser)


def test_a_cjk_font_is_installed_for_the_pages_chinese_text():
    """Without one, Chromium draws every Chinese character as an empty box in the screenshots."""
    listed = subprocess.run(
        ["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True, check=True
    ).stdout
    assert "CJK" in listed


def test_console_says_when_to_retry_once(browser, tmp_path):
    """The gateway's per-number window says in its message when to retry; the console adds the
    Retry-After hint only to a message that does not say it already."""
    document = without_limits(default_document())
    document["ratelimit"]["phone"] = [{"limit": 1, "seconds": 60}]
    document["store"]["path"] = str(tmp_path / "retry.db")
    server = LiveServer(tmp_path, document)
    try:
        sign_in(browser, server)
        wait_for(browser, lambda d: d.find_element(By.ID, "balance").text != "—", message="no account")
        for expected in ("短信发送成功", "PHONE_RATE_LIMITED"):
            _type(browser, "phone", "13912345670")
            _type(browser, "params", '{"code": "4321"}')
            browser.find_element(By.ID, "send-submit").click()
            wait_for(browser, lambda d, text=expected: text in d.find_element(By.ID, "send-result").text)
        result = wait_for(
            browser,
            lambda d: (
                "PHONE_RATE_LIMITED" in d.find_element(By.ID, "send-result").text
                and d.find_element(By.ID, "send-result")
            ),
        )
        assert result.text.count("秒后重试") == 1, result.text
        save_screenshot(browser, "console-retry-once")
        assert_no_severe_logs(browser, allowed=[REFUSED.replace("502", "502|429")])
    finally:
        server.stop()

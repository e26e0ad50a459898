"""The admin console (/admin) in a real headless Chromium against a live gateway process.

The gateway runs with one admin token (``ops-alice``); the page is driven as an operator would:
a refused token, signing in, the accounts table and its search, creating an account (its secret
shown once, and working), a top-up (a double submit credits once), rotating the secret, disabling
and enabling, limits, a message lookup, the audit log, signing out. What the page claims is
checked against the gateway itself (``/api/account/info``, a send, the admin API). Every state is
checked by axe-core at desktop width and at 375 px (``assert_accessible_state``), with screenshots
in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests import pages_live
from tests.browser import LiveServer, assert_accessible_state, assert_no_severe_logs, narrow, wait_for
from tests.conftest import DEMO_KEY, SEND_BODY, default_document, merge, without_limits
from tests.test_reload import document_for, hup, rewrite, start  # noqa: F401 (start: a fixture)

browser = pages_live.browser  # the fixture: a fresh headless Chromium per test

TOKEN = "alice-admin-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
# Failed requests the tests provoke on purpose (a refused token): Chromium logs them as errors.
REFUSED = r"Failed to load resource: the server responded with a status of 401"
ZONED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00")  # the config's Asia/Shanghai


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """A gateway with an admin token, the mock carrier and the demo account."""
    workdir = tmp_path_factory.mktemp("admin-console")
    document = without_limits(default_document())
    document["store"]["path"] = str(workdir / "admin.db")
    document["admin"] = {"tokens": [{"name": "ops-alice", "token": TOKEN}]}
    server = LiveServer(workdir, document)
    try:
        yield server
    finally:
        server.stop()


# --- helpers ---------------------------------------------------------------------------------

_FITS = "const box = document.getElementById(arguments[0]); return box.scrollWidth <= box.clientWidth;"


def _shown(element_id: str):
    return lambda d: d.find_element(By.ID, element_id).is_displayed()


def _focused_id(driver) -> str:
    return driver.execute_script("return document.activeElement.id")


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _type(driver, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def _sign_in(driver, live: LiveServer, token: str = TOKEN) -> None:
    driver.get(f"{live.url}/admin")
    _type(driver, "admin_token", token)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()


def _signed_in(driver, live: LiveServer) -> None:
    _sign_in(driver, live)
    wait_for(driver, _shown("workspace"), message="never signed in")
    wait_for(driver, lambda d: _row(d, DEMO_KEY), message="the demo account is not listed")


def _row(driver, key: str):
    rows = driver.find_elements(By.CSS_SELECTOR, f'#accounts tbody tr[data-key="{key}"]')
    return rows[0] if rows else None


def _cells(driver, key: str) -> list[str]:
    return [cell.text for cell in _row(driver, key).find_elements(By.TAG_NAME, "td")]


def _listed_keys(driver) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#accounts tbody tr[data-key]")
    return [row.get_attribute("data-key") for row in rows]


def _info(live: LiveServer, key: str, secret: str) -> requests.Response:
    return requests.get(
        f"{live.url}/api/account/info", timeout=10, headers={"X-API-Key": key, "X-API-Secret": secret}
    )


def _send(live: LiveServer, key: str, secret: str) -> requests.Response:
    return requests.post(
        f"{live.url}/api/sms/send",
        json=SEND_BODY,
        timeout=10,
        headers={"X-API-Key": key, "X-API-Secret": secret},
    )


def _admin_get(live: LiveServer, path: str, **params) -> dict:
    response = requests.get(f"{live.url}/admin/api{path}", params=params, headers=ADMIN_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _account(live: LiveServer, key: str) -> dict:
    return next(a for a in _admin_get(live, "/accounts")["accounts"] if a["api_key"] == key)


def _create(driver, name: str) -> tuple[str, str]:
    """Create an account through the form; its key and one-time secret as the page shows them."""
    _type(driver, "create-name", name)
    _type(driver, "create-balance", "1.5")
    _type(driver, "create-rate", "20")
    _type(driver, "create-burst", "40")
    driver.find_element(By.ID, "create-submit").click()
    wait_for(driver, _shown("secret-box"), message="no secret shown after create")
    return _text(driver, "secret-key"), _text(driver, "secret-value")


def _manage(driver, key: str, keyboard: bool = False) -> None:
    button = _row(driver, key).find_element(By.CSS_SELECTOR, "button.manage")
    assert button.accessible_name == f"管理账户 {_cells(driver, key)[0]}"
    if keyboard:
        button.send_keys(Keys.ENTER)
    else:
        button.click()
    wait_for(driver, _shown("manage-panel"))
    assert _focused_id(driver) == "manage-title"
    assert _text(driver, "manage-key") == key


def _top_up(driver, amount: str, reason: str) -> None:
    """Fill in the manage panel's top-up form and submit it once."""
    _type(driver, "topup-amount", amount)
    _type(driver, "topup-reason", reason)
    driver.find_element(By.ID, "topup-submit").click()


def _result(driver, text: str) -> None:
    wait_for(
        driver,
        lambda d: text in _text(d, "manage-result"),
        message=f"the panel never said {text!r} (error: {_text(driver, 'manage-error')!r})",
    )


# --- signing in and out ----------------------------------------------------------------------


def test_a_refused_token_then_signing_in_and_out(browser, live):
    browser.get(f"{live.url}/admin")
    assert browser.find_element(By.ID, "admin_token").get_attribute("type") == "password"
    assert_accessible_state(browser, "admin-signed-out")
    _sign_in(browser, live, token="not-the-token-0123456789abcdef")
    wait_for(browser, lambda d: "UNAUTHORIZED" in _text(d, "signin-error"), message="no refusal shown")
    assert browser.find_element(By.ID, "signin-error").get_attribute("role") == "alert"
    assert "管理令牌无效" in _text(browser, "signin-error")
    assert not browser.find_element(By.ID, "workspace").is_displayed()
    assert browser.execute_script("return sessionStorage.length") == 0
    assert_accessible_state(browser, "admin-refused")
    with narrow(browser):  # the long request id wraps inside the alert on a phone
        assert browser.execute_script(_FITS, "signin-error"), "the refusal sticks out of its box"

    _signed_in(browser, live)
    wait_for(browser, lambda d: _focused_id(d) == "accounts-title", message="focus not on the heading")
    assert browser.execute_script("return sessionStorage.getItem('smsedge.admin.token')") == TOKEN
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.get_cookies() == []
    wait_for(browser, lambda d: "共 " in _text(d, "audit-info"))
    assert_accessible_state(browser, "admin-signed-in")

    browser.refresh()  # the tab keeps the sign-in
    wait_for(browser, _shown("workspace"), message="a reload signed out")
    browser.find_element(By.ID, "signout").click()
    wait_for(browser, _shown("signin-panel"))
    assert _focused_id(browser) == "admin_token"
    assert browser.execute_script("return sessionStorage.length") == 0
    assert not _listed_keys(browser)
    assert TOKEN not in browser.page_source
    assert_accessible_state(browser, "admin-signed-out-again")
    assert_no_severe_logs(browser, allowed=[REFUSED])


def test_a_token_retired_by_a_reload_signs_the_page_out(browser, tmp_path, start):  # noqa: F811
    document = merge(document_for(tmp_path), {"admin": {"tokens": [{"name": "ops-alice", "token": TOKEN}]}})
    gateway = start(document)
    _signed_in(browser, gateway)
    _type(browser, "account-search", "demo")
    rewrite(gateway, merge(document, {"admin": {"tokens": [{"name": "ops-bob", "token": TOKEN[::-1]}]}}))
    hup(gateway)
    browser.find_element(By.ID, "accounts-reload").click()
    wait_for(browser, _shown("signin-panel"), message="a refused token left the page signed in")
    assert "UNAUTHORIZED" in _text(browser, "signin-error")
    assert _focused_id(browser) == "admin_token"
    assert browser.execute_script("return sessionStorage.length") == 0
    assert not _listed_keys(browser)
    _type(browser, "admin_token", TOKEN[::-1])  # the new token: a clean workspace, no stale error
    browser.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait_for(browser, lambda d: _row(d, DEMO_KEY), message="the new token did not sign in")
    assert not browser.find_element(By.ID, "accounts-error").is_displayed()
    assert browser.find_element(By.ID, "account-search").get_attribute("value") == ""
    assert_no_severe_logs(browser, allowed=[REFUSED])


def test_the_nav_links_the_admin_console(browser, live):
    browser.get(f"{live.url}/status")
    link = browser.find_element(By.CSS_SELECTOR, "nav a[href='/admin']")
    assert link.text == "运维管理"
    link.click()
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "运维管理")


# --- accounts --------------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_it_works(browser, live):
    _signed_in(browser, live)
    key, secret = _create(browser, "shop-created")
    assert _focused_id(browser) == "secret-title"
    assert "只显示这一次" in _text(browser, "secret-title")
    assert "不再显示" in browser.find_element(By.ID, "secret-box").text
    copy = browser.find_element(By.ID, "secret-copy")
    assert copy.text == "复制 Secret"
    assert_accessible_state(browser, "admin-secret-shown")
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": live.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    copy.click()
    wait_for(browser, lambda d: _text(d, "secret-copied") == "已复制", message="the copy button said nothing")
    assert (
        browser.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
        )
        == secret
    )
    # Without the clipboard API (plain http on a LAN address): the secret is selected for Ctrl+C.
    browser.execute_script(
        "Object.defineProperty(navigator, 'clipboard', {value: undefined});"
        "document.getElementById('secret-copied').textContent = '';"
    )
    copy.click()
    wait_for(browser, lambda d: _text(d, "secret-copied") != "", message="the fallback said nothing")
    assert browser.execute_script("return window.getSelection().toString()") == secret
    assert _info(live, key, secret).status_code == 200
    assert _info(live, key, "wrong-" + secret).status_code == 401
    account = _account(live, key)
    assert account["name"] == "shop-created" and account["balance"] == 1.5
    assert account["ratelimit"] == {"rate": 20, "burst": 40}
    cells = _cells(browser, key)
    assert cells[:3] == ["shop-created", key, "1.50"] and cells[5] == "20/秒,突发 40"
    browser.find_element(By.ID, "secret-dismiss").click()
    assert not browser.find_element(By.ID, "secret-box").is_displayed()
    assert secret not in browser.page_source  # gone from the page, not only hidden
    assert _focused_id(browser) == "accounts-title"
    assert_no_severe_logs(browser)


def test_the_secret_goes_with_the_next_action(browser, live):
    _signed_in(browser, live)
    _key, secret = _create(browser, "shop-next-action")
    _type(browser, "lookup-id", "no-such-message")
    browser.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    wait_for(browser, lambda d: "NOT_FOUND" in _text(d, "lookup-error"))
    assert not browser.find_element(By.ID, "secret-box").is_displayed()
    assert secret not in browser.page_source
    assert_no_severe_logs(browser, allowed=[r"status of 404"])


def test_a_top_up_the_page_would_round_is_refused_not_rounded(browser, live):
    """A browser reads numbers as floats: 1.00000000000000001 would leave the page as 1 and be
    credited. The page refuses what the API refuses (more than 3 decimals) before sending."""
    _signed_in(browser, live)
    key, _secret = _create(browser, "shop-exact")
    _manage(browser, key)
    _top_up(browser, "1.00000000000000001", "精度测试")
    wait_for(
        browser, lambda d: "金额最多 3 位小数" in _text(d, "manage-error"), message="rounded, not refused"
    )
    assert _account(live, key)["balance"] == 1.5
    assert not [
        e
        for e in _admin_get(live, "/audit", per_page=100)["entries"]
        if e["action"] == "topup" and e["account"]["api_key"] == key
    ]


def test_create_says_what_is_wrong(browser, live):
    _signed_in(browser, live)
    browser.find_element(By.ID, "create-submit").click()
    wait_for(browser, lambda d: _text(d, "create-error") == "请输入账户名称", message="empty name accepted")
    _type(browser, "create-name", "half-a-limit")
    _type(browser, "create-rate", "5")
    browser.find_element(By.ID, "create-submit").click()
    wait_for(browser, lambda d: _text(d, "create-error") == "速率和突发容量要么都填,要么都不填")
    _type(browser, "create-name", "demo")  # the seeded account's name: taken
    _type(browser, "create-rate", "")
    browser.find_element(By.ID, "create-submit").click()
    wait_for(browser, lambda d: "ACCOUNT_EXISTS" in _text(d, "create-error"), message="no conflict shown")
    assert browser.find_element(By.ID, "create-error").get_attribute("role") == "alert"
    assert not browser.find_element(By.ID, "secret-box").is_displayed()
    assert_accessible_state(browser, "admin-create-error")
    assert_no_severe_logs(browser, allowed=[r"status of 409"])


def test_search_filters_by_name_or_key(browser, live):
    _signed_in(browser, live)
    key, _secret = _create(browser, "search-target")
    search = browser.find_element(By.ID, "account-search")
    search.send_keys("SEARCH-TAR")  # any case
    wait_for(browser, lambda d: _listed_keys(d) == [key], message="the name did not filter")
    assert re.fullmatch(r"显示 1 / \d+ 个账户", _text(browser, "accounts-count"))
    search.clear()
    search.send_keys(DEMO_KEY[-8:])
    wait_for(browser, lambda d: _listed_keys(d) == [DEMO_KEY], message="the key did not filter")
    search.clear()
    search.send_keys("nothing-is-called-this")
    wait_for(browser, lambda d: _listed_keys(d) == [])
    assert _text(browser, "accounts").endswith("没有匹配的账户")
    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.DELETE)
    wait_for(browser, lambda d: {key, DEMO_KEY} <= set(_listed_keys(d)))


def test_top_up_credits_once_per_submission(browser, live):
    _signed_in(browser, live)
    key, _secret = _create(browser, "shop-topup")
    _manage(browser, key)
    browser.find_element(By.ID, "topup-submit").click()  # no amount, no reason: refused on the page
    wait_for(browser, lambda d: "请填写充值金额和原因" in _text(d, "manage-error"))
    assert browser.find_element(By.ID, "manage-error").get_attribute("role") == "alert"
    assert_accessible_state(browser, "admin-manage-error")
    _top_up(browser, "2.25", "月度充值")
    _result(browser, "当前余额 3.75 元")
    assert _focused_id(browser) == "topup-submit"
    assert _cells(browser, key)[2] == "3.75"
    # A double submit of one filled-in form (two submits before the first answer): one credit.
    _type(browser, "topup-amount", "1")
    _type(browser, "topup-reason", "双击测试")
    browser.execute_script(
        "const form = document.getElementById('topup-form');form.requestSubmit(); form.requestSubmit();"
    )
    _result(browser, "当前余额 4.75 元")
    wait_for(browser, lambda d: _account(live, key)["balance"] == 4.75)
    topups = [
        e
        for e in _admin_get(live, "/audit", per_page=100)["entries"]
        if e["action"] == "topup" and e["account"]["api_key"] == key
    ]
    assert [e["reason"] for e in topups] == ["双击测试", "月度充值"]
    assert topups[0]["before"] == {"balance": 3.75} and topups[0]["after"] == {"balance": 4.75}
    assert_no_severe_logs(browser)


def test_rotate_confirms_then_shows_the_new_secret(browser, live):
    _signed_in(browser, live)
    key, old = _create(browser, "shop-rotate")
    _manage(browser, key)
    browser.find_element(By.ID, "rotate").click()
    wait_for(browser, _shown("rotate-confirm"))
    assert _focused_id(browser) == "rotate-yes"
    assert_accessible_state(browser, "admin-rotate-confirm")
    browser.find_element(By.ID, "rotate-no").click()  # cancelled: nothing changes
    assert not browser.find_element(By.ID, "rotate-confirm").is_displayed()
    assert _focused_id(browser) == "rotate"
    assert _info(live, key, old).status_code == 200
    browser.find_element(By.ID, "rotate").click()
    browser.find_element(By.ID, "rotate-yes").click()
    wait_for(browser, _shown("secret-box"), message="no new secret shown")
    new = _text(browser, "secret-value")
    assert new and new != old and _text(browser, "secret-key") == key
    assert _focused_id(browser) == "secret-title"
    assert _info(live, key, old).status_code == 401
    assert _info(live, key, new).status_code == 200
    assert_no_severe_logs(browser)


def test_disable_enable_and_limits(browser, live):
    _signed_in(browser, live)
    key, secret = _create(browser, "shop-disable")
    _manage(browser, key, keyboard=True)
    toggle = browser.find_element(By.ID, "toggle-disabled")
    assert toggle.text == "禁用账户"
    toggle.click()
    _result(browser, "账户已禁用")
    assert _focused_id(browser) == "toggle-disabled"  # the keyboard's place is kept
    assert _cells(browser, key)[4] == "已禁用" and toggle.text == "启用账户"
    refused = _send(live, key, secret)
    assert refused.status_code == 403 and refused.json()["code"] == "ACCOUNT_DISABLED"
    toggle.click()
    _result(browser, "账户已启用")
    assert _cells(browser, key)[4] == "正常"
    assert _send(live, key, secret).status_code == 200

    _type(browser, "settings-rate", "5")
    _type(browser, "settings-burst", "10")
    Select(browser.find_element(By.ID, "settings-verification")).select_by_value("pending")
    browser.find_element(By.ID, "settings-provider-mock").click()
    browser.find_element(By.ID, "settings-submit").click()
    _result(browser, "设置已保存")
    account = _account(live, key)
    assert account["ratelimit"] == {"rate": 5, "burst": 10}
    assert account["verification_status"] == "pending" and account["providers"] == ["mock"]
    assert _cells(browser, key)[3:7] == ["审核中(pending)", "正常", "5/秒,突发 10", "mock"]
    browser.find_element(By.ID, "settings-default-limit").click()
    assert not browser.find_element(By.ID, "settings-rate").is_enabled()
    browser.find_element(By.ID, "settings-submit").click()
    wait_for(browser, lambda d: _cells(d, key)[5] == "默认", message="limit not back to the default")
    assert _account(live, key)["ratelimit"] is None
    browser.find_element(By.ID, "manage-title").send_keys(Keys.ESCAPE)  # closes; focus back to the row
    assert not browser.find_element(By.ID, "manage-panel").is_displayed()
    assert browser.switch_to.active_element.get_attribute("data-key") == key
    assert_no_severe_logs(browser)


# --- messages and the audit log ---------------------------------------------------------------


def test_message_lookup(browser, live):
    _signed_in(browser, live)
    key, secret = _create(browser, "shop-lookup")
    sent = _send(live, key, secret)
    assert sent.status_code == 200, sent.text
    message_id = sent.json()["data"]["message_id"]
    _type(browser, "lookup-id", message_id)
    browser.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    wait_for(browser, _shown("lookup-record"), message="no lookup result")
    assert not browser.find_element(By.ID, "secret-box").is_displayed()  # the next action hid it
    record = browser.find_element(By.ID, "lookup-record").text
    assert "shop-lookup" in record and key in record and message_id in record
    assert "成功(success)" in record
    assert "138****8000" in record and "13800138000" not in browser.page_source
    assert ZONED.search(record), record
    assert "shop-lookup" in _text(browser, "lookup-summary")
    assert browser.find_element(By.ID, "lookup-summary").get_attribute("role") == "status"
    assert_accessible_state(browser, "admin-lookup")
    assert_no_severe_logs(browser)


def _audit_rows(driver, key: str) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
        if key in row.text
    ]


def test_the_audit_log_shows_what_was_done(browser, live):
    _signed_in(browser, live)
    key, _secret = _create(browser, "shop-audit")
    _manage(browser, key)
    _top_up(browser, "1", "审计测试")
    _result(browser, "当前余额 2.50 元")
    browser.find_element(By.ID, "toggle-disabled").click()
    _result(browser, "账户已禁用")
    browser.find_element(By.ID, "toggle-disabled").click()
    _result(browser, "账户已启用")
    browser.find_element(By.ID, "rotate").click()
    browser.find_element(By.ID, "rotate-yes").click()
    wait_for(browser, _shown("secret-box"))
    secret = _text(browser, "secret-value")
    wait_for(browser, lambda d: len(_audit_rows(d, key)) == 5, message="the audit log did not follow")
    rows = _audit_rows(browser, key)  # newest first
    assert [row[2] for row in rows] == ["轮换 Secret", "启用", "禁用", "充值", "创建"]
    assert {row[1] for row in rows} == {"ops-alice"}
    assert all(ZONED.fullmatch(row[0]) for row in rows), [row[0] for row in rows]
    assert rows[0][3] == f"shop-audit\n{key}"
    assert rows[3][4:] == ["余额: 1.50 → 2.50", "审计测试"]
    assert rows[2][4] == "已禁用: 否 → 是"
    assert rows[4][4].split("\n") == [
        "余额: 1.50",
        "实名认证: 已认证(approved)",
        "已禁用: 否",
        "服务商: 全部",
        "限流: 20/秒,突发 40",
    ]
    stamp = browser.find_element(By.CSS_SELECTOR, "#audit tbody tr time")
    text = stamp.text
    assert stamp.get_attribute("datetime") == text[:19].replace(" ", "T") + "+08:00"
    assert secret not in browser.find_element(By.ID, "audit").text
    browser.find_element(By.ID, "secret-dismiss").click()
    browser.find_element(By.ID, "audit").location_once_scrolled_into_view  # noqa: B018 (scrolls)
    assert_accessible_state(browser, "admin-audit")
    assert_no_severe_logs(browser)


def test_the_audit_log_pages(browser, live):
    for index in range(21):  # more than a page of 20, whatever the other tests left
        created = requests.post(
            f"{live.url}/admin/api/accounts",
            headers=ADMIN_HEADERS,
            timeout=10,
            json={"name": f"bulk-{index}"},
        )
        assert created.status_code in (201, 409), created.text
    _signed_in(browser, live)
    total = _admin_get(live, "/audit")["total"]
    pages = -(-total // 20)
    wait_for(browser, lambda d: _text(d, "audit-info") == f"第 1 / {pages} 页 · 共 {total} 条")
    assert not browser.find_element(By.ID, "audit-prev").is_enabled()
    browser.find_element(By.ID, "audit-next").click()
    wait_for(browser, lambda d: _text(d, "audit-info").startswith("第 2 /"))
    assert browser.find_element(By.ID, "audit-prev").is_enabled()


def test_the_gateway_log_holds_no_admin_token(live):
    log = live.log.read_text(encoding="utf-8")
    assert "/admin/api/accounts" in log  # the console's calls are logged, the token they carried is not
    assert TOKEN not in log

"""What a person sees on the pages, measured where axe has nothing to say (issue 23).

On a 375 px phone: a status badge, the pager's buttons and its page count each stay on one line;
the audit table's cells are not squeezed into wrapping; /status shows a carrier's success rate and
latency without scrolling. At 1280 px: a select sits level with the fields beside it; a table
region that takes the keyboard's focus is not left under the sticky top bar; every focus ring is
at least 3:1 against what is behind it (WCAG 1.4.11); no two landmarks share a name (axe's
best-practice ``landmark-unique``); money reads the same on every page. Each state is saved as
``test-artifacts/layout-<state>-1280.png`` and ``…-375.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests import pages_live
from tests.browser import (
    MOBILE_WIDTH,
    LiveServer,
    assert_no_severe_logs,
    axe_violations,
    narrow,
    save_screenshot,
    wait_for,
)
from tests.conftest import DEMO_KEY
from tests.pages_live import sign_in
from tests.test_money import YUAN_TEXTS

browser = pages_live.browser  # the fixture: a fresh headless Chromium per test
TOKEN = "layout-admin-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
DESKTOP_WIDTH = 1280


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """The seeded gateway with /admin on, and audit entries of each kind (some with no reason)."""
    server = pages_live.seeded_gateway(tmp_path_factory.mktemp("layout"), admin_token=TOKEN)
    try:
        _seed_audit(server)
        yield server
    finally:
        server.stop()


def _seed_audit(server: LiveServer) -> None:
    api = f"{server.url}/admin/api"
    created = requests.post(
        f"{api}/accounts",
        headers=ADMIN_HEADERS,
        timeout=10,
        json={
            "name": "shop-layout",
            "balance": 1.5,
            "providers": ["mock", "flaky"],
            "ratelimit": {"rate": 20, "burst": 40},
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]["api_key"]
    topped = requests.post(
        f"{api}/accounts/{key}/topup",
        headers=ADMIN_HEADERS,
        timeout=10,
        json={"amount": 2.25, "reason": "月度充值"},
    )
    assert topped.status_code == 200, topped.text
    changed = requests.patch(
        f"{api}/accounts/{key}",
        headers=ADMIN_HEADERS,
        timeout=10,
        json={"verification_status": "pending", "providers": ["mock"]},
    )
    assert changed.status_code == 200, changed.text


# --- measuring -------------------------------------------------------------------------------

# How many lines an element's text takes on screen: its text's boxes, those whose tops lie within
# half a line of each other counted as one line.
_LINES = """
const lines = (element) => {
  const tops = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) if (rect.width > 0) tops.push([rect.top, rect.height]);
  }
  tops.sort((a, b) => a[0] - b[0]);
  let count = 0;
  let last = -Infinity;
  for (const [top, height] of tops) {
    if (top - last > height / 2) count += 1;
    last = top;
  }
  return count;
};
"""

_ONE_LINE = (
    _LINES
    + """
return [...document.querySelectorAll(arguments[0])].filter((e) => e.offsetParent)
  .map((e) => [e.id || e.className || e.tagName, e.textContent, lines(e)]);
"""
)


def _wrapped(driver, selector: str) -> list:
    """The elements matching ``selector`` whose text takes more than one line, with their counts."""
    found = driver.execute_script(_ONE_LINE, selector)
    assert found, f"nothing shown matches {selector}"
    return [item for item in found if item[2] != 1]


# Each audit cell: its text, its own lines, the lines it takes on screen, its width; the region's.
_AUDIT_CELLS = (
    _LINES
    + """
const region = document.getElementById('audit').parentElement;
return {
  width: region.clientWidth, scrolls: region.scrollWidth > region.clientWidth,
  cells: [...document.querySelectorAll('#audit tbody tr[data-action] td')].map((td) => [
    td.textContent, td.textContent.split('\\n').length, lines(td), td.getBoundingClientRect().width]),
};
"""
)

_VISIBLE = """
const [element] = arguments;
const box = element.getBoundingClientRect();
const clip = element.closest('.scroll').getBoundingClientRect();
return {box: [box.left, box.top, box.right, box.bottom], clip: [clip.left, clip.right],
        viewport: [window.innerWidth, window.innerHeight]};
"""


def _in_first_view(driver, element) -> bool:
    """Wholly on screen without scrolling the page or its table region."""
    found = driver.execute_script(_VISIBLE, element)
    left, top, right, bottom = found["box"]
    clip_left, clip_right = found["clip"]
    width, height = found["viewport"]
    return (
        left >= max(0, clip_left) - 0.5
        and right <= min(width, clip_right) + 0.5
        and top >= -0.5
        and bottom <= height + 0.5
    )


# Each flex line of a form: the top of each text field, select and button on it.
_FORM_ROWS = """
const rows = [];
let row = null;
for (const item of arguments[0].children) {
  const box = item.getBoundingClientRect();
  if (box.height === 0) continue;
  if (!row || box.top >= row.bottom - 0.5) { row = {bottom: box.bottom, controls: []}; rows.push(row); }
  row.bottom = Math.max(row.bottom, box.bottom);
  const control = item.matches('button') ? item
    : item.querySelector('input:not([type=checkbox]), select');
  if (control && !item.matches('.check')) {
    row.controls.push([control.id || control.textContent, control.tagName.toLowerCase(),
                       control.getBoundingClientRect().top]);
  }
}
return rows.map((r) => r.controls);
"""


def _misaligned_selects(driver, form_id: str) -> list:
    """Selects whose top is more than 1 px from a neighbour's on the same line of the form."""
    rows = driver.execute_script(_FORM_ROWS, driver.find_element(By.ID, form_id))
    selects = [row for row in rows if any(kind == "select" for _, kind, _ in row) and len(row) > 1]
    assert selects, f"#{form_id} has no select beside another control"
    return [row for row in selects if max(top for *_, top in row) - min(top for *_, top in row) > 1]


def _luminance(color: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"[\d.]+", color)[:3])
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


_RING = """
const element = document.activeElement;
const style = getComputedStyle(element);
let behind = element.parentElement;
while (behind && /rgba\\(.*, 0\\)|transparent/.test(getComputedStyle(behind).backgroundColor)) {
  behind = behind.parentElement;
}
return {id: element.id || element.className, style: style.outlineStyle, width: parseFloat(style.outlineWidth),
        color: style.outlineColor,
        behind: behind ? getComputedStyle(behind).backgroundColor : 'rgb(255, 255, 255)'};
"""


def _shot(driver, state: str, element=None) -> None:
    """``layout-<state>-1280.png`` and ``…-375.png``, each with ``element`` (if given) in view."""
    for width, name in ((DESKTOP_WIDTH, f"layout-{state}-1280"), (MOBILE_WIDTH, f"layout-{state}-375")):
        if width == MOBILE_WIDTH:
            with narrow(driver):
                _scroll_to(driver, element)
                save_screenshot(driver, name)
        else:
            _scroll_to(driver, element)
            save_screenshot(driver, name)


def _scroll_to(driver, element) -> None:
    if element is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    else:
        driver.execute_script("window.scrollTo(0, 0)")
    # Two frames: the page painted at its new width and place before the screenshot.
    driver.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")


# --- signing in ------------------------------------------------------------------------------


def _records_shown(driver) -> bool:
    return len(driver.find_elements(By.CSS_SELECTOR, "#records tbody tr[data-status]")) == 10


def _console(driver, live: LiveServer) -> None:
    sign_in(driver, live)
    wait_for(driver, _records_shown, message="no records")
    wait_for(driver, lambda d: d.find_element(By.ID, "balance").text != "—", message="no balance")


def _admin(driver, live: LiveServer) -> None:
    driver.get(f"{live.url}/admin")
    driver.find_element(By.ID, "admin_token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#accounts tr[data-key="{DEMO_KEY}"]'),
        message="never signed in",
    )
    wait_for(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#audit tbody tr[data-action]")) >= 3,
        message="no audit entries",
    )


# --- on a phone ------------------------------------------------------------------------------


def test_status_badges_and_the_pager_stay_on_one_line_on_a_phone(browser, live):
    _console(browser, live)
    with narrow(browser):
        badges = _wrapped(browser, "#records .status-badge")
        pager = _wrapped(browser, "#prev-page, #page-info, #next-page")
        save_screenshot(browser, "layout-console-records-375-full", full_page=True)
    assert badges == [], f"status badges wrap at {MOBILE_WIDTH} px: {badges}"
    assert pager == [], f"the pager wraps at {MOBILE_WIDTH} px: {pager}"
    _shot(browser, "console-records", browser.find_element(By.ID, "records"))
    _shot(browser, "console-pager", browser.find_element(By.ID, "page-info"))
    _admin(browser, live)
    with narrow(browser):
        pager = _wrapped(browser, "#audit-prev, #audit-info, #audit-next")
    assert pager == [], f"the audit pager wraps at {MOBILE_WIDTH} px: {pager}"
    assert_no_severe_logs(browser)


def test_audit_entries_read_whole_on_a_phone(browser, live):
    """No cell squeezed beside another into more lines than its own, nothing to scroll sideways to."""
    _admin(browser, live)
    with narrow(browser):
        found = browser.execute_script(_AUDIT_CELLS)
    squeezed = [
        (text, own, shown, round(width))
        for text, own, shown, width in found["cells"]
        if shown > own and width < 0.9 * found["width"]
    ]
    assert squeezed == [], (
        f"audit cells squeezed at {MOBILE_WIDTH} px (text, its lines, lines shown, "
        f"width of {found['width']} px): {squeezed}"
    )
    assert not found["scrolls"], f"at {MOBILE_WIDTH} px the audit log scrolls sideways to its changes"
    _shot(browser, "admin-audit", browser.find_element(By.ID, "audit"))
    assert_no_severe_logs(browser)


def test_status_shows_success_rate_and_latency_first_on_a_phone(browser, live):
    browser.get(f"{live.url}/status")
    with narrow(browser):
        row = browser.find_element(By.CSS_SELECTOR, "#carriers tbody tr")
        hidden = [
            name
            for name in ("success-rate", "latency")
            if not _in_first_view(browser, row.find_element(By.CLASS_NAME, name))
        ]
        save_screenshot(browser, "layout-status-375")
    assert hidden == [], f"at {MOBILE_WIDTH} px the first carrier's {hidden} is off screen"
    save_screenshot(browser, "layout-status-1280")
    assert_no_severe_logs(browser)


# --- on the desktop --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "forms"), [("console", ["filters", "send-form"]), ("admin", ["create-form", "settings-form"])]
)
def test_selects_sit_level_with_their_neighbours(browser, live, page, forms):
    if page == "console":
        _console(browser, live)
    else:
        _admin(browser, live)
        browser.find_element(By.CSS_SELECTOR, f'#accounts button.manage[data-key="{DEMO_KEY}"]').click()
        wait_for(browser, lambda d: d.find_element(By.ID, "manage-panel").is_displayed())
    for form in forms:
        assert _misaligned_selects(browser, form) == [], f"#{form}: a select is not level (id, tag, top)"
        _shot(browser, f"{page}-{form}", browser.find_element(By.ID, form))
    assert_no_severe_logs(browser)


@pytest.mark.parametrize(
    ("page", "region"), [("console", "#records"), ("status", "#carriers"), ("docs", "#send table.params")]
)
def test_a_focused_table_is_not_under_the_top_bar(browser, live, page, region):
    """Its top edge under the bar when the keyboard reaches it: the browser scrolls it clear."""
    if page == "console":
        _console(browser, live)
    else:
        browser.get(f"{live.url}/" if page == "docs" else f"{live.url}/status")
    box = browser.find_element(By.CSS_SELECTOR, region).find_element(By.XPATH, "./ancestor::div[@tabindex]")
    browser.execute_script("scrollTo(0, arguments[0].getBoundingClientRect().top + scrollY - 20)", box)
    assert browser.execute_script("return arguments[0].getBoundingClientRect().top", box) < 21
    browser.execute_script("arguments[0].focus()", box)  # as Tab or Shift+Tab would
    bar = browser.execute_script("return document.querySelector('.topbar').getBoundingClientRect().bottom")
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top", box)
    save_screenshot(browser, f"layout-{page}-focused-table-1280")
    assert top >= bar, f"the focused table's top ({top:.0f} px) is under the top bar (to {bar:.0f} px)"


def test_every_focus_ring_stands_out_from_its_background(browser, live):
    _admin(browser, live)
    browser.find_element(By.CSS_SELECTOR, f'#accounts button.manage[data-key="{DEMO_KEY}"]').click()
    wait_for(browser, lambda d: d.find_element(By.ID, "manage-panel").is_displayed())
    rings = []
    for start in ("settings-verification", "topup-reason", "create-burst", "signout"):
        browser.execute_script("document.getElementById(arguments[0]).focus()", start)
        browser.switch_to.active_element.send_keys(Keys.TAB)  # the keyboard's focus: :focus-visible
        rings.append(browser.execute_script(_RING))
    browser.execute_script("document.getElementById('audit-reload').focus()")
    browser.switch_to.active_element.send_keys(Keys.TAB)  # the audit table's region
    rings.append(browser.execute_script(_RING))
    assert [ring["id"] for ring in rings] == [  # a checkbox, a button, a text field, a table region
        "settings-default-limit",
        "topup-submit",
        "create-provider-mock",
        "account-search",
        "table-wrap scroll",
    ]
    save_screenshot(browser, "layout-admin-focus-ring-1280")
    browser.execute_script("document.getElementById('settings-verification').focus()")
    browser.switch_to.active_element.send_keys(Keys.TAB)
    _shot(browser, "admin-checkbox-focus", browser.find_element(By.ID, "settings-default-limit"))
    faint = [
        (ring["id"], ring["color"], ring["behind"], round(_contrast(ring["color"], ring["behind"]), 2))
        for ring in rings
        if ring["style"] == "none" or ring["width"] < 2 or _contrast(ring["color"], ring["behind"]) < 3
    ]
    assert faint == [], f"focus rings under 3:1 against their background (id, ring, behind, ratio): {faint}"


def test_no_two_landmarks_share_a_name(browser, live):
    shared = {}
    _console(browser, live)
    shared["console"] = axe_violations(browser, ["best-practice"])
    _admin(browser, live)
    shared["admin"] = axe_violations(browser, ["best-practice"])
    for page, path in (("status", "/status"), ("docs", "/")):
        browser.get(f"{live.url}{path}")
        shared[page] = axe_violations(browser, ["best-practice"])
    found = {
        page: [node["target"] for v in violations if v["id"] == "landmark-unique" for node in v["nodes"]]
        for page, violations in shared.items()
    }
    assert all(not targets for targets in found.values()), f"landmarks sharing a name: {found}"


# --- money -----------------------------------------------------------------------------------


def test_money_reads_the_same_on_every_page(browser, live):
    accounts = requests.get(f"{live.url}/admin/api/accounts", headers=ADMIN_HEADERS, timeout=10).json()
    balance = next(a["balance"] for a in accounts["data"]["accounts"] if a["api_key"] == DEMO_KEY)
    milli = round(balance * 1000)
    assert milli in YUAN_TEXTS, milli  # 100 yuan less the seeded sends at 0.05: 98.85, in the table
    _admin(browser, live)
    formats = browser.execute_script(
        "return arguments[0].map((milli) => window.SmsEdge.yuan(milli / 1000))", list(YUAN_TEXTS)
    )
    assert formats == list(YUAN_TEXTS.values()), "the pages' script and the server format money differently"
    row = browser.find_element(By.CSS_SELECTOR, f'#accounts tr[data-key="{DEMO_KEY}"]')
    on_admin = row.find_elements(By.TAG_NAME, "td")[2].text
    audit = browser.find_element(By.ID, "audit").text
    _shot(browser, "admin-accounts", browser.find_element(By.ID, "accounts"))
    _console(browser, live)
    on_console = browser.find_element(By.ID, "balance").text
    _shot(browser, "console-balance", browser.find_element(By.ID, "balance"))
    assert on_admin == on_console == YUAN_TEXTS[milli], (on_admin, on_console)
    assert "余额: 1.50 → 3.75" in audit, audit
    assert_no_severe_logs(browser)

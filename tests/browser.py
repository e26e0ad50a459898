"""Helpers for the browser tests: a live gateway process and Debian's headless Chromium.

The browser is the machine's own (``apt-get install chromium chromium-driver``, which ``make test``
does when they are missing), driven by Selenium through chromedriver: nothing is downloaded. When
either binary is missing the tests *fail* with the install hint — CI must run them, never skip.
The gateway runs as ``python run.py serve`` in its own process, as in production, so the
synchronous driver never blocks the server's event loop.

Accessibility and layout, for every page and every state a page can be in (``/admin`` included):
``assert_accessible(driver, "state")`` runs axe-core (installed from the npm registry by
``make test``, pinned there; never fetched by a test) for WCAG 2.1 A/AA and fails listing each
violation; ``with narrow(driver):`` emulates a 375 px phone, where ``assert_no_sideways_scroll``
fails naming the elements that stick out. ``assert_accessible_state(driver, "state")`` does all of
it for the page as it is now, at both widths, with a screenshot of each.
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
    "AXE_JS",
    "MOBILE_WIDTH",
    "LiveServer",
    "assert_accessible",
    "assert_accessible_state",
    "assert_no_severe_logs",
    "assert_no_sideways_scroll",
    "axe_violations",
    "chrome",
    "narrow",
    "save_screenshot",
    "wait_for",
]

CHROMIUM = os.environ.get("SMS_EDGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SMS_EDGE_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
# Put there by `make test` (the Makefile pins the version): npm install --prefix .venv/node axe-core@…
AXE_JS = Path(os.environ.get("SMS_EDGE_AXE", ROOT / ".venv/node/node_modules/axe-core/axe.min.js"))
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
MOBILE_WIDTH, MOBILE_HEIGHT = 375, 812
# What works headless on this machine: no sandbox as root, no GPU, and no calls home (the network
# is closed, and every refused connection would be noise in the console log).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=zh-CN",
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
        entry["message"]
        for entry in driver.get_log("browser")
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
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _require_axe() -> str:
    if not AXE_JS.is_file():
        pytest.fail(
            f"the accessibility checks need axe-core at {AXE_JS}: run `make axe` (part of `make test`: "
            "npm install --prefix .venv/node axe-core@<the Makefile's AXE_VERSION>), or point "
            "SMS_EDGE_AXE at an axe.min.js",
            pytrace=False,
        )
    return AXE_JS.read_text(encoding="utf-8")


_RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then((results) => done(results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
  }))))
  .catch((error) => done([{id: 'axe-error', impact: 'critical', help: String(error), helpUrl: '',
                           nodes: []}]));
"""


def axe_violations(driver: webdriver.Chrome, tags: Iterable[str] = AXE_TAGS) -> list[dict[str, Any]]:
    """axe-core's WCAG violations on the page as it is now (injected once per document)."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(_require_axe())
    driver.set_script_timeout(60)
    return driver.execute_async_script(_RUN_AXE, list(tags))


def assert_accessible(driver: webdriver.Chrome, state_name: str) -> None:
    """No WCAG 2.1 A/AA violation in this page state; the failure lists id, impact, targets, help."""
    violations = axe_violations(driver)
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} {violation['helpUrl']}"
        )
        for node in violation["nodes"][:10]:
            lines.append(f"    {node['target']}: {' '.join(node['summary'].split())}")
    assert not violations, f"axe: {len(violations)} violation(s) in {state_name!r}:\n" + "\n".join(lines)


@contextmanager
def narrow(
    driver: webdriver.Chrome, width: int = MOBILE_WIDTH, height: int = MOBILE_HEIGHT
) -> Iterator[None]:
    """A phone's viewport (the page's meta viewport honoured) until the block ends."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


_OVERFLOW = """
const limit = arguments[0];
const wide = [];
for (const element of document.body.querySelectorAll('*')) {
  const box = element.getBoundingClientRect();
  if (box.width > 0 && box.right > limit + 0.5) {
    const id = element.id ? '#' + element.id : '';
    const cls = element.classList.length ? '.' + [...element.classList].join('.') : '';
    wide.push(`${element.tagName.toLowerCase()}${id}${cls} right=${Math.round(box.right)}`);
  }
}
return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
        wide: wide.slice(0, 15)};
"""


def assert_no_sideways_scroll(driver: webdriver.Chrome, width: int = MOBILE_WIDTH) -> None:
    """The page fits a viewport ``width`` px wide (use inside ``narrow(driver, width)``).

    A phone zooms out to fit a page wider than the screen, so the viewport itself growing past
    ``width`` is the failure too, not only a scroll width over the viewport's.
    """
    found = driver.execute_script(_OVERFLOW, width)
    widest = max(found["scrollWidth"], found["innerWidth"])
    assert widest <= width, (
        f"page scrolls sideways: {found['scrollWidth']} px wide for a {width} px viewport "
        f"(the browser's viewport became {found['innerWidth']} px); sticking out: {found['wide']}"
    )


def assert_accessible_state(driver: webdriver.Chrome, state_name: str) -> None:
    """axe on the desktop window and on a phone, no sideways scroll there, a screenshot of each.

    Screenshots: ``test-artifacts/a11y-<state_name>.png`` and ``…-375.png``.
    """
    assert_accessible(driver, state_name)
    save_screenshot(driver, f"a11y-{state_name}")
    with narrow(driver):
        assert_no_sideways_scroll(driver)
        assert_accessible(driver, f"{state_name} at {MOBILE_WIDTH} px")
        save_screenshot(driver, f"a11y-{state_name}-{MOBILE_WIDTH}")

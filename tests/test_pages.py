"""The pages without a browser: what they are rendered from, their headers, their privacy.

The browser tests (``test_pages_browser.py``) drive the same pages in Chromium; these are the fast
checks of the server side: config in, HTML out.
"""

from __future__ import annotations

import re
from html import unescape

import pytest

from gateway.keys import STATUS
from gateway.middlewares.security_headers import CONTENT_SECURITY_POLICY
from gateway.pages import STATIC_DIR, TEMPLATES_DIR
from gateway.pages.examples import code_examples
from gateway.status.carrier_stats import CarrierStats
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, SEND_BODY
from tests.seed import SEED_HOST, SEED_PAGE, seed_example

FULL_NUMBER = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
PAGES = ("/", "/console", "/status")


@pytest.mark.parametrize("path", PAGES)
async def test_pages_send_strict_security_headers(client, path):
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", PAGES)
async def test_pages_need_nothing_inline_or_remote(client, path):
    html = await (await client.get(path)).text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html, "inline style"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "a resource from elsewhere"
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        assert (await client.get(asset)).status == 200, asset


async def test_api_responses_keep_their_own_headers(client):
    response = await client.get("/api/account/info", headers=DEMO_HEADERS)
    assert response.status == 200
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("site.css", "text/css"),
        ("console.js", "javascript"),
        ("docs.js", "javascript"),
        ("status.js", "javascript"),
        ("pages.js", "javascript"),
        ("admin.js", "javascript"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_are_served_by_the_gateway(client, name, content_type):
    response = await client.get(f"/static/{name}")
    assert response.status == 200
    assert content_type in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_missing_static_file_is_the_json_404(client):
    response = await client.get("/static/nope.js")
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"


async def test_docs_follow_the_running_config(make_client):
    client = await make_client(
        ratelimit={"account": {"rate": 7, "burst": 33}, "phone": [{"limit": 2, "seconds": 60}]},
        providers={"backends": {"spare": {"plugin": "mock", "price": 0.03}}, "failover": ["spare"]},
        server={"public_url": "https://sms.example.test:8443/"},
    )
    html = unescape(await (await client.get("/")).text())
    assert 'curl -X POST "https://sms.example.test:8443/api/sms/send"' in html
    assert "服务商:mock / spare,默认使用系统配置(mock)" in html
    assert "每秒补充 7 个,容量 33 个" in html
    assert "1 分钟内最多 2 条" in html
    assert "手机号数组,最多100个" in html
    assert "每页数量,默认10,最大100" in html


async def test_docs_show_prices_as_every_page_shows_money(make_client):
    client = await make_client(
        providers={
            "backends": {"dear": {"plugin": "mock", "price": 1}, "exact": {"plugin": "mock", "price": 0.045}}
        }
    )
    html = await (await client.get("/")).text()
    prices = dict(re.findall(r"<tr><td><code>(\w+)</code></td><td>([\d.]+)</td>", html))
    assert prices == {"mock": "0.05", "dear": "1.00", "exact": "0.045"}


@pytest.mark.parametrize("host", ['evil.test"; rm -rf ~; "', "a b", "x'y", "evil.example", "evil.test:80"])
async def test_docs_never_echo_the_host_header(client, host):
    """A forged Host must not steer readers (or a shared cache's readers) to another server."""
    html = unescape(await (await client.get("/", headers={"Host": host})).text())
    assert "rm -rf" not in html and "x'y" not in html and "evil" not in html
    reached = f"http://127.0.0.1:{client.port}"
    assert f'<code id="base-url">{reached}</code>' in html
    assert f'curl -X POST "{reached}/api/sms/send"' in html


@pytest.mark.parametrize("path", PAGES)
async def test_pages_hold_no_secret_or_recorded_number(client, path):
    for phone in ("13912345678", "13712345678"):
        response = await client.post(
            "/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "phone": phone}
        )
        assert response.status == 200
    html = await (await client.get(path)).text()
    assert DEMO_SECRET not in html and DEMO_KEY not in html
    assert "13912345678" not in html and "13712345678" not in html
    # The only full number anywhere is the docs' example number, the seed's own.
    assert set(FULL_NUMBER.findall(html)) <= {"13800138000", "13900139000"}


async def test_status_aggregates_recent_carrier_calls(client):
    for _ in range(3):
        response = await client.post("/api/sms/send", headers=DEMO_HEADERS, json=SEND_BODY)
        assert response.status == 200
    summary = client.app[STATUS].carriers.summary("mock")
    assert summary.calls == 3 and summary.success_rate == 1.0
    html = await (await client.get("/status")).text()
    row = re.search(r'<tr data-carrier="mock">(.*?)</tr>', html, re.S).group(1)
    assert '<td class="success-rate">100.0%</td>' in row
    assert '<td class="calls">3</td>' in row
    assert "闭合 (closed)" in row
    assert html.count('<span class="pill ok">正常</span>') == 2  # store and rate limiter


def test_carrier_stats_keep_a_bounded_window():
    now = [100.0]
    stats = CarrierStats(["a"], size=4, clock=lambda: now[0])
    assert stats.summary("a").calls == 0 and stats.summary("a").success_rate is None
    for outcome, seconds in (
        ("timeout", 5.0),
        ("success", 0.010),
        ("success", 0.030),
        ("refused", 0.020),
        ("success", 0.040),
    ):
        stats.record("a", outcome, seconds)
    now[0] = 103.5
    summary = stats.summary("a")
    assert summary.calls == 4  # the timeout fell out of the window
    assert summary.success_rate == 0.75
    assert summary.avg_ms == pytest.approx(25.0)
    assert summary.p95_ms == pytest.approx(40.0)
    assert summary.last_seconds_ago == pytest.approx(3.5)
    stats.record("b", "success", 0.001)  # a carrier it was not told about is still counted
    assert stats.summary("b").calls == 1


def test_templates_and_static_files_ship_with_the_package():
    """setup.cfg's package_data globs are flat: the folders must stay flat to be installed."""
    for folder in (TEMPLATES_DIR, STATIC_DIR):
        assert folder.is_dir()
        assert all(entry.is_file() for entry in folder.iterdir()), f"subfolder in {folder}"


def _lines(text: str) -> list[str]:
    """The seed's copy lost its indentation; compare line by line without it."""
    return [line.strip() for line in text.strip().splitlines()]


@pytest.mark.parametrize(
    ("name", "example"),
    [("curl_send", "send.sh"), ("php", "send.php"), ("python", "send.py"), ("node", "send.js")],
)
def test_examples_are_the_seeds_own_pointed_here(name, example):
    seed = seed_example(example)
    assert seed in SEED_PAGE.read_text(encoding="utf-8")  # the fixture is still the page's text
    ours = code_examples("http://gw.test:8080", "sk_xxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxx", 10)[name]
    assert _lines(ours) == _lines(seed.replace(SEED_HOST, "http://gw.test:8080"))


async def test_examples_reach_the_page_escaped_once(client):
    html = await (await client.get("/")).text()
    assert "&lt;?php\n$apiKey = &#39;your_api_key&#39;;" in html
    assert "&#39;phone&#39; =&gt; &#39;13800138000&#39;," in html
    assert "<?php" not in html


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_has_a_skip_link_to_its_main(client, path):
    html = await (await client.get(path)).text()
    assert re.search(r'<body[^>]*>\s*<a class="skip-link" href="#main">跳到主要内容</a>', html)
    assert len(re.findall(r'<main [^>]*id="main" tabindex="-1"', html)) == 1


async def test_status_json_is_the_pages_figures(client):
    for _ in range(3):
        assert (await client.post("/api/sms/send", headers=DEMO_HEADERS, json=SEND_BODY)).status == 200
    response = await client.get("/status.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    text = await response.text()
    assert DEMO_KEY not in text and DEMO_SECRET not in text and not FULL_NUMBER.search(text)
    data = await response.json()
    assert data["healthy"] is True and data["store"]["ok"] and data["limiter"]["ok"]
    assert data["callbacks"] == {"queue_depth": 0, "oldest_age_seconds": 0.0}
    [mock] = data["carriers"]
    assert (mock["name"], mock["calls"], mock["success_rate"]) == ("mock", 3, "100.0%")
    assert mock["circuit_open"] is False
    assert [chart["key"] for chart in data["charts"]] == ["requests", "errors", "latency"]
    assert all(chart["summary"] and chart["path"].startswith("M") for chart in data["charts"][:2])
    assert re.fullmatch(r"\d\d:\d\d:\d\d Asia/Shanghai \(UTC\+08:00\)", data["updated"]["text"])
    assert data["updated"]["iso"].endswith("+08:00")
    # The page shows the same snapshot, and updates it in place: no meta refresh (WCAG 2.2.1).
    html = await (await client.get("/status")).text()
    assert 'http-equiv="refresh"' not in html
    assert re.search(
        r'<p id="updated" role="status" aria-live="polite">数据更新于 <time id="updated-at" '
        r'datetime="[^"]+\+08:00">\d\d:\d\d:\d\d Asia/Shanghai \(UTC\+08:00\)</time>',
        html,
    )
    assert '<button type="button" id="refresh-toggle" aria-pressed="false" hidden>' in html
    assert '<script src="/static/status.js?v=' in html


async def test_pages_show_times_in_the_configured_zone(make_client):
    client = await make_client(server={"timezone": "Asia/Kolkata"})
    data = await (await client.get("/status.json")).json()
    assert data["updated"]["text"].endswith(" Asia/Kolkata (UTC+05:30)")
    html = await (await client.get("/console")).text()
    assert 'data-timezone="Asia/Kolkata"' in html and "<th>发送时间(Asia/Kolkata)</th>" in html

"""The /admin page without a browser: there only while an admin token is configured, its headers,
what it is rendered from, and the nav linking it only then.

The browser tests (``test_admin_console_browser.py``) drive the same page in Chromium.
"""

from __future__ import annotations

import re

import pytest
import requests

from gateway.middlewares.security_headers import CONTENT_SECURITY_POLICY
from tests.conftest import merge
from tests.test_reload import document_for, hup, rewrite, start  # noqa: F401 (start: a fixture)

TOKEN = "alice-admin-token-0123456789abcdef"
ADMIN = {"tokens": [{"name": "ops-alice", "token": TOKEN}]}
NAV_LINK = re.compile(r'<a href="/admin"[^>]*>运维管理</a>')


@pytest.fixture
async def admin_client(make_client):
    return await make_client(admin=ADMIN)


@pytest.mark.parametrize("headers", [{}, {"Authorization": f"Bearer {TOKEN}"}])
async def test_no_admin_page_without_tokens(client, headers):
    response = await client.get("/admin", headers=headers)
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"


@pytest.mark.parametrize("path", ["/", "/console", "/status"])
async def test_the_nav_links_admin_only_while_it_is_on(client, admin_client, path):
    assert not NAV_LINK.search(await (await client.get(path)).text())
    assert NAV_LINK.search(await (await admin_client.get(path)).text())


async def test_admin_page_is_a_strict_uncached_shell(admin_client):
    response = await admin_client.get("/admin")  # no token needed: the page holds nothing private
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    html = await response.text()
    assert 'aria-current="page">运维管理</a>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html, "inline style"
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        assert (await admin_client.get(asset)).status == 200, asset
    assert re.search(
        r'<script src="/static/pages\.js\?v=\w+" defer></script>\s*'
        r'<script src="/static/admin\.js\?v=\w+" defer></script>',
        html,
    )


async def test_admin_page_is_rendered_from_the_config(admin_client):
    html = await (await admin_client.get("/admin")).text()
    assert 'data-timezone="Asia/Shanghai"' in html
    assert 'id="admin_token" type="password"' in html
    for prefix in ("create", "settings"):
        assert re.search(rf'value="mock" id="{prefix}-provider-mock"', html)
    assert re.search(r'<option value="pending">审核中\(pending\)</option>', html)
    assert 'maxlength="200"' in html and 'maxlength="64"' in html


async def test_the_token_is_never_in_the_page(admin_client):
    html = await (await admin_client.get("/admin", headers={"Authorization": f"Bearer {TOKEN}"})).text()
    assert TOKEN not in html


def test_a_reload_puts_the_page_and_its_nav_link_up_and_takes_them_down(tmp_path, start):  # noqa: F811
    document = document_for(tmp_path)
    gateway = start(document)
    assert requests.get(f"{gateway.url}/admin", timeout=10).status_code == 404
    rewrite(gateway, merge(document, {"admin": ADMIN}))
    hup(gateway)
    assert requests.get(f"{gateway.url}/admin", timeout=10).status_code == 200
    assert NAV_LINK.search(requests.get(f"{gateway.url}/status", timeout=10).text)
    rewrite(gateway, document)
    hup(gateway, count=2)
    assert requests.get(f"{gateway.url}/admin", timeout=10).status_code == 404
    assert not NAV_LINK.search(requests.get(f"{gateway.url}/status", timeout=10).text)

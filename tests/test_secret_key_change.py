"""What changing ``server.secret_key`` does, as docs/runbook-secret-key.md says, on both stores.

The key is the HMAC key of every number's hash: the per-number windows and the delivery-receipt
match are keyed by it. A gateway is "restarted" (a new app on the same SQLite file or Redis, the
limiter on Redis so windows outlive a restart) with the same key, a new key, and the old key again;
receipts are real Tencent pushes for sends through the fake Tencent upstream.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEMO_HEADERS, ROOT, merge, missing_from
from tests.fakes import tencent as fake_tencent
from tests.test_receipts import TEMPLATE, TENCENT_OK, backends, push, records, tencent_report

OLD_KEY, NEW_KEY = "old-secret-key-0000000000000000", "new-secret-key-1111111111111111"
PHONE = "13800138001"
RUNBOOK = ROOT / "docs" / "runbook-secret-key.md"


@pytest.fixture
async def tencent_url(aiohttp_server) -> str:
    return str((await aiohttp_server(fake_tencent.create_app(fake_tencent.TencentUpstream()))).make_url("/"))


def serial(n: int) -> str:
    """The carrier id the fake gives the ``n``-th number it accepts (it counts from 1)."""
    return f"2433:{n:028d}"


@pytest.fixture
def restart(make_client, store_backend, redis_server, tencent_url):
    """``await restart(key)``: the running gateway (if any) closed, a new one started on the same
    store and limiter with ``server.secret_key: key``."""
    running: list[Any] = []

    async def start(key: str):
        if running:
            await running.pop().close()
        overrides = merge(
            store_backend,
            {
                **backends({"tencent_url": tencent_url, "aliyun_url": tencent_url}),
                "server": {"secret_key": key},
                "redis": {"url": redis_server.url},
                "ratelimit": {"backend": "redis", "phone": [{"limit": 1, "seconds": 3600}]},
            },
        )
        running.append(await make_client(**overrides))
        return running[-1]

    return start


async def send(client) -> int:
    response = await client.post(
        "/api/sms/send", headers=DEMO_HEADERS, json={"phone": PHONE, "provider": "tencent", **TEMPLATE}
    )
    return response.status


async def status_of(client, n: int) -> str:
    """The status of the account's ``n``-th record."""
    found = await records(client, DEMO_HEADERS)
    return sorted(found.values(), key=lambda record: record["id"])[n - 1]["status"]


async def test_a_new_key_resets_the_windows_and_receipts_match_only_under_the_key_of_their_send(restart):
    gateway = await restart(OLD_KEY)
    assert [await send(gateway), await send(gateway)] == [200, 429]  # a window of 1 an hour
    gateway = await restart(OLD_KEY)
    assert await send(gateway) == 429, "the window outlives a restart with the same key"

    gateway = await restart(NEW_KEY)
    assert await send(gateway) == 200, "under a new key the number starts a fresh window"
    assert await send(gateway) == 429
    # The carrier's receipt for the send made under the old key is taken (so it stops pushing) but
    # matches nothing: that record stays pending. The one sent under the new key is finalised.
    for n in (1, 2):
        answer = await push(gateway, "tencent", [tencent_report(PHONE, serial(n))])
        assert answer.status == 200 and await answer.json() == TENCENT_OK
    assert [await status_of(gateway, 1), await status_of(gateway, 2)] == ["pending", "success"]

    # Going back to the old key: a receipt pushed again for the old send matches once more.
    gateway = await restart(OLD_KEY)
    assert (await push(gateway, "tencent", [tencent_report(PHONE, serial(1))])).status == 200
    assert await status_of(gateway, 1) == "success"
    assert await send(gateway) == 429, "and the old key's window is still there"


def test_the_runbook_says_what_these_tests_show():
    claims = (
        "fresh window",
        "stays `pending`",
        "restart",
        "no way to keep the old key",
        "awaiting_receipt",
        "split",
    )
    assert missing_from(RUNBOOK, claims) == []

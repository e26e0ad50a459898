"""What callers and operators type is kept and shown masked (issue 23.12): a template id, an account's
name, a top-up's reason and an Idempotency-Key may hold a number, and none is stored or printed whole.
The carrier still gets the template id the caller sent.

The stored side is read from the SQLite file itself (every row of every table), so no store method
can hide a number that is there.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from gateway.accounts.creation import create_account
from gateway.keys import CONFIG, STORE
from tests.conftest import DEMO_HEADERS, DEMO_KEY, add_account
from tests.fakes import backend_config
from tests.fakes import tencent as fake_tencent
from tests.test_cli import Cli

ADMIN_TOKEN = "ops-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TEMPLATE_NUMBER = "13912345678"  # a caller's template id that is a phone number
KEY_NUMBER = "13712345678"  # in an Idempotency-Key
REASON_NUMBER = "13612345678"  # in a top-up's reason
NAME_NUMBER = "13512345678"  # in an account name made before names were checked


def stored_rows(path: str) -> str:
    """Every row of every table of the SQLite file, as text."""
    with sqlite3.connect(path) as db:
        return "\n".join(db.iterdump())


@pytest.fixture
async def tencent(aiohttp_server) -> tuple[fake_tencent.TencentUpstream, str]:
    upstream = fake_tencent.TencentUpstream()
    server = await aiohttp_server(fake_tencent.create_app(upstream))
    return upstream, str(server.make_url("/"))


async def test_a_template_id_spelling_a_number_reaches_the_carrier_whole_and_is_kept_masked(
    make_client, tencent
):
    upstream, url = tencent
    backend = backend_config("tencent", url, fake_tencent.CREDENTIALS, price=0.045, timeout=2, retries=0)
    client = await make_client(
        providers={"default": "tencent", "backends": {"tencent": backend}},
        admin={"tokens": [{"name": "ops", "token": ADMIN_TOKEN}]},
    )
    _, headers = await add_account(client, "team", balance_milli=10_000)
    body = {"phone": "13800138000", "template_id": TEMPLATE_NUMBER}
    keyed = {**headers, "Idempotency-Key": f"order-{KEY_NUMBER}"}
    first = await client.post("/api/sms/send", json=body, headers=keyed)
    assert first.status == 200, await first.text()
    again = await client.post("/api/sms/send", json=body, headers=keyed)
    assert (again.status, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert await again.json() == await first.json()  # the key is still found

    [sent] = upstream.requests
    assert sent.json()["TemplateId"] == TEMPLATE_NUMBER  # the carrier gets what the caller sent
    records = await (await client.get("/api/sms/records", headers=headers)).json()
    [record] = records["data"]["records"]
    assert record["template_id"] == "139****5678"
    message_id = (await first.json())["data"]["message_id"]
    found = await (await client.get(f"/admin/api/messages/{message_id}", headers=ADMIN)).json()
    assert found["data"]["record"]["template_id"] == "139****5678"
    stored = stored_rows(client.app[CONFIG].store.path)
    assert "139****5678" in stored
    assert TEMPLATE_NUMBER not in stored and KEY_NUMBER not in stored


@pytest.mark.parametrize("template_id", ["1234567", "12345678", "SMS_154950909", "login.v2-2024"])
async def test_carrier_template_numbers_are_kept_whole(client, template_id):
    """Tencent's template ids are 6-7 digit numbers, Aliyun's ``SMS_`` and 9 digits: not numbers to hide."""
    response = await client.post(
        "/api/sms/send", json={"phone": "13800138000", "template_id": template_id}, headers=DEMO_HEADERS
    )
    assert response.status == 200, await response.text()
    records = await (await client.get("/api/sms/records", headers=DEMO_HEADERS)).json()
    assert records["data"]["records"][0]["template_id"] == template_id


async def test_admin_top_ups_keep_reasons_names_and_keys_masked(make_client):
    client = await make_client(admin={"tokens": [{"name": "ops", "token": ADMIN_TOKEN}]})
    account, _ = await add_account(client, f"team-{NAME_NUMBER}")
    response = await client.post(
        f"/admin/api/accounts/{account.api_key}/topup",
        json={"amount": 5, "reason": f"call {REASON_NUMBER}"},
        headers={**ADMIN, "Idempotency-Key": f"topup-{KEY_NUMBER}"},
    )
    assert response.status == 200, await response.text()
    with sqlite3.connect(client.app[CONFIG].store.path) as db:
        [(name, reason)] = db.execute(
            "SELECT account_name, reason FROM audit_log WHERE actor = 'ops'"
        ).fetchall()
        keys = db.execute("SELECT key FROM idempotency_keys").fetchall()
    assert (name, reason) == ("team-135****5678", "call 136****5678")
    assert keys and KEY_NUMBER not in json.dumps(keys)
    stored = stored_rows(client.app[CONFIG].store.path)
    assert REASON_NUMBER not in stored and KEY_NUMBER not in stored
    assert (await client.app[STORE].account_by_key(account.api_key)).balance_milli == 5000


async def test_accounts_list_prints_names_masked(tmp_path, make_client):
    cli = Cli(tmp_path)
    client = await make_client(store={"path": str(cli.db)})
    await create_account(client.app[STORE], f"team-{NAME_NUMBER}")
    result = await asyncio.to_thread(cli, "list")
    assert result.returncode == 0, result.stderr
    names = {json.loads(line)["name"] for line in result.stdout.splitlines()}
    assert names == {"demo", "team-135****5678"}
    assert NAME_NUMBER not in result.stdout
    topped = await asyncio.to_thread(
        cli, "topup", "--key", DEMO_KEY, "--amount", "1", "--reason", f"call {REASON_NUMBER}"
    )
    assert topped.returncode == 0, topped.stderr
    assert REASON_NUMBER not in topped.stdout
    assert REASON_NUMBER not in stored_rows(str(cli.db))

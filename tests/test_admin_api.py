"""The admin API (/admin/api/, ``docs/api.md`` "Admin API") over real HTTP, on both stores.

Bearer tokens from ``admin.tokens``; tenant credentials never work there; every change goes
through the account service and leaves an audit entry naming the admin; no secret is ever in an
entry or an answer but the one-time secret of a create or a rotation.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.keys import STORE
from gateway.store.base import StoreUnavailable
from gateway.store.records import NewRecord, Settlement
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, SEND_BODY

ALICE_TOKEN = "alice-admin-token-0123456789abcdef"
BOB_TOKEN = "bob-admin-token-0123456789abcdef00"
ADMIN = {"tokens": [{"name": "ops-alice", "token": ALICE_TOKEN}, {"name": "ops-bob", "token": BOB_TOKEN}]}
ALICE = {"Authorization": f"Bearer {ALICE_TOKEN}"}
BOB = {"Authorization": f"Bearer {BOB_TOKEN}"}
API = "/admin/api"


@pytest.fixture
async def admin(make_client, store_backend):
    return await make_client(admin=ADMIN, **store_backend)


async def call(client, method: str, path: str, headers=ALICE, **kwargs) -> tuple[int, dict]:
    response = await client.request(method, API + path, headers=headers, **kwargs)
    assert response.content_type == "application/json"
    body = await response.json()
    assert response.status != 500, body
    if response.status >= 400:
        assert body["success"] is False and body["code"] and body["request_id"], body
    return response.status, body


async def create(client, name: str = "shop", **fields) -> dict:
    status, body = await call(client, "POST", "/accounts", json={"name": name, **fields})
    assert status == 201, body
    return body["data"]


def tenant(account: dict, secret: str | None = None) -> dict[str, str]:
    return {"X-API-Key": account["api_key"], "X-API-Secret": secret or account["api_secret"]}


async def audit(client, **query) -> list[dict]:
    """The admins' entries, newest first: the config's own (its demo account created, actor
    ``config``) are ``test_listed_accounts``'s subject."""
    status, body = await call(client, "GET", "/audit", params={"per_page": 100, **query})
    assert status == 200, body
    return [entry for entry in body["data"]["entries"] if entry["actor"] != "config"]


# -- on or off, and who may call -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/api/accounts", "/admin/api/audit", "/admin", "/admin/"])
async def test_without_tokens_the_admin_api_is_not_there(client, path):
    response = await client.get(path, headers=ALICE)
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Bearer {ALICE_TOKEN}x"},
        {"Authorization": f"Basic {ALICE_TOKEN}"},
        {"Authorization": ALICE_TOKEN},
        {"Authorization": f"Bearer {DEMO_KEY}"},
        {"Authorization": f"Bearer {DEMO_SECRET}"},
        DEMO_HEADERS,
        {**DEMO_HEADERS, "Authorization": f"Bearer {DEMO_SECRET}"},
    ],
    ids=[
        "none",
        "wrong",
        "longer",
        "basic",
        "no-scheme",
        "tenant-key",
        "tenant-secret",
        "tenant-headers",
        "tenant-both",
    ],
)
async def test_anything_but_an_admin_token_is_401(admin, headers):
    for method, path in (
        ("GET", "/accounts"),
        ("POST", "/accounts"),
        ("GET", "/audit"),
        ("POST", f"/accounts/{DEMO_KEY}/rotate-secret"),
    ):
        response = await admin.request(method, API + path, headers=headers, json={"name": "x"})
        body = await response.json()
        assert response.status == 401, body
        assert body["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Cache-Control"] == "no-store"
    assert await audit(admin) == []  # the refused create made nothing
    assert (await admin.get("/api/account/info", headers=DEMO_HEADERS)).status == 200


async def test_each_token_is_its_admin_and_the_audit_names_them(admin):
    await create(admin, "by-alice")
    status, _ = await call(admin, "POST", "/accounts", headers=BOB, json={"name": "by-bob"})
    assert status == 201
    assert [(e["actor"], e["account"]["name"]) for e in await audit(admin)] == [
        ("ops-bob", "by-bob"),
        ("ops-alice", "by-alice"),
    ]


# -- accounts --------------------------------------------------------------------------------------


async def test_create_shows_the_secret_once_and_the_account_works(admin):
    created = await create(
        admin,
        "team-a",
        balance=12.5,
        verification_status="approved",
        ratelimit={"rate": 5, "burst": 10},
        providers=["mock"],
    )
    assert created["api_key"].startswith("sk_") and len(created["api_secret"]) >= 16
    assert (created["name"], created["balance"], created["disabled"]) == ("team-a", 12.5, False)
    assert (created["ratelimit"], created["providers"]) == ({"rate": 5.0, "burst": 10}, ["mock"])
    info = await admin.get("/api/account/info", headers=tenant(created))
    assert (await info.json())["data"]["balance"] == 12.5
    status, listed = await call(admin, "GET", "/accounts")
    assert status == 200
    by_name = {row["name"]: row for row in listed["data"]["accounts"]}
    assert set(by_name) == {"demo", "team-a"}
    assert by_name["team-a"] == {k: v for k, v in created.items() if k != "api_secret"}
    assert created["api_secret"] not in json.dumps(listed) and "hmac-sha256" not in json.dumps(listed)
    [entry] = await audit(admin)
    assert (entry["action"], entry["actor"], entry["before"]) == ("create", "ops-alice", {})
    assert entry["account"] == {"name": "team-a", "api_key": created["api_key"]}
    assert entry["after"] == {
        "balance": 12.5,
        "verification_status": "approved",
        "disabled": False,
        "providers": ["mock"],
        "ratelimit": {"rate": 5.0, "burst": 10},
    }


async def test_a_taken_name_is_409_and_keeps_the_first(admin):
    first = await create(admin, "taken", balance=2)
    status, body = await call(admin, "POST", "/accounts", json={"name": "taken", "balance": 9})
    assert (status, body["code"]) == (409, "ACCOUNT_EXISTS")
    status, body = await call(admin, "POST", "/accounts", json={"name": "demo"})
    assert status == 409
    _, listed = await call(admin, "GET", "/accounts")
    assert [(a["api_key"], a["balance"]) for a in listed["data"]["accounts"] if a["name"] == "taken"] == [
        (first["api_key"], 2.0)
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        b"{}",
        b'{"name": ""}',
        b'{"name": "   "}',
        b'{"name": 5}',
        json.dumps({"name": "x" * 65}).encode(),
        b'{"name": "x", "balance": -1}',
        b'{"name": "x", "balance": 0.0001}',
        b'{"name": "x", "balance": "1"}',
        b'{"name": "x", "balance": 1e10}',
        b'{"name": "x", "balance": 1.00000000000000001}',
        b'{"name": "x", "balance": null}',
        b'{"name": "x", "verification_status": "maybe"}',
        b'{"name": "x", "ratelimit": {"rate": 0, "burst": 1}}',
        b'{"name": "x", "ratelimit": {"rate": 1}}',
        b'{"name": "x", "ratelimit": {"rate": 1, "burst": 0}}',
        b'{"name": "x", "providers": ["nowhere"]}',
        b'{"name": "x", "providers": ["mock", "mock"]}',
        b'{"name": "x", "extra": 1}',
        b'{"name": "x", "api_key": "sk_mine"}',
        *(
            json.dumps({"name": name}).encode()
            for name in (
                "a\nb",
                "a\rb",
                "tab\tname",
                "line\u2028sep",
                "rtl\u202eevil",
                "zero\u200bwidth",
                "bom\ufeff",
                "audit-1280-1796628604",
                "１３８００１３８０００",
                "call 138 0013 8000",
                "\u0000",
            )
        ),
    ],
)
async def test_a_bad_create_is_400_and_creates_nothing(admin, body):
    status, answer = await call(
        admin, "POST", "/accounts", data=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    assert (status, answer["code"]) == (400, "INVALID_PARAMS"), answer
    _, listed = await call(admin, "GET", "/accounts")
    assert [a["name"] for a in listed["data"]["accounts"]] == ["demo"]
    assert await audit(admin) == []


async def test_names_are_trimmed_and_one_that_reads_as_a_taken_one_is_409(admin):
    created = await create(admin, "  shop  ")
    assert created["name"] == "shop"
    for twin in ("SHOP", "Shop ", "ｓｈｏｐ", "ＳＨＯＰ", "DEMO"):  # the config's demo account too
        status, body = await call(admin, "POST", "/accounts", json={"name": twin})
        assert (status, body["code"]) == (409, "ACCOUNT_EXISTS"), twin
    _, listed = await call(admin, "GET", "/accounts")
    assert sorted(a["name"] for a in listed["data"]["accounts"]) == ["demo", "shop"]
    assert [e["account"]["name"] for e in await audit(admin)] == ["shop"]


async def test_patch_changes_what_it_names_and_audits_the_difference(admin):
    created = await create(admin, "limits", verification_status="pending")
    path = f"/accounts/{created['api_key']}"
    status, body = await call(
        admin,
        "PATCH",
        path,
        json={
            "verification_status": "approved",
            "ratelimit": {"rate": 2.5, "burst": 7},
            "providers": ["mock"],
        },
    )
    assert status == 200, body
    changed = body["data"]
    assert (changed["verification_status"], changed["ratelimit"], changed["providers"]) == (
        "approved",
        {"rate": 2.5, "burst": 7},
        ["mock"],
    )
    status, body = await call(admin, "PATCH", path, json={"ratelimit": None, "providers": []})
    assert (body["data"]["ratelimit"], body["data"]["providers"]) == (None, [])
    assert body["data"]["verification_status"] == "approved"  # earlier changes stay
    latest, first = (await audit(admin))[:2]
    assert (first["action"], first["before"], first["after"]) == (
        "update",
        {"providers": [], "ratelimit": None, "verification_status": "pending"},
        {"providers": ["mock"], "ratelimit": {"rate": 2.5, "burst": 7}, "verification_status": "approved"},
    )
    assert (latest["before"], latest["after"]) == (
        {"providers": ["mock"], "ratelimit": {"rate": 2.5, "burst": 7}},
        {"providers": [], "ratelimit": None},
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"disabled": "yes"},
        {"disabled": None},
        {"verification_status": "maybe"},
        {"providers": ["nowhere"]},
        {"ratelimit": {"rate": -1, "burst": 1}},
        {"balance": 5},
        {"name": "new"},
    ],
)
async def test_a_bad_patch_is_400(admin, body):
    status, answer = await call(admin, "PATCH", f"/accounts/{DEMO_KEY}", json=body)
    assert (status, answer["code"]) == (400, "INVALID_PARAMS")
    assert await audit(admin) == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/accounts/sk_nobody", {"disabled": True}),
        ("POST", "/accounts/sk_nobody/topup", {"amount": 1, "reason": "r"}),
        ("POST", "/accounts/sk_nobody/rotate-secret", None),
        ("GET", "/messages/no-such-message", None),
    ],
)
async def test_an_unknown_account_or_message_is_404(admin, method, path, body):
    status, answer = await call(admin, method, path, json=body)
    assert (status, answer["code"]) == (404, "NOT_FOUND")
    assert await audit(admin) == []


async def test_disable_refuses_sends_at_once_and_enable_restores(admin):
    created = await create(admin, "sender", balance=10)
    headers = tenant(created)
    assert (await admin.post("/api/sms/send", json=SEND_BODY, headers=headers)).status == 200
    status, body = await call(admin, "PATCH", f"/accounts/{created['api_key']}", json={"disabled": True})
    assert (status, body["data"]["disabled"]) == (200, True)
    refused = await admin.post("/api/sms/send", json={**SEND_BODY, "phone": "13900139000"}, headers=headers)
    assert (refused.status, (await refused.json())["code"]) == (403, "ACCOUNT_DISABLED")
    await call(admin, "PATCH", f"/accounts/{created['api_key']}", json={"disabled": False})
    again = await admin.post("/api/sms/send", json={**SEND_BODY, "phone": "13700137000"}, headers=headers)
    assert again.status == 200
    enable, disable = (await audit(admin))[:2]
    assert (disable["action"], disable["before"], disable["after"]) == (
        "disable",
        {"disabled": False},
        {"disabled": True},
    )
    assert (enable["action"], enable["after"]) == ("enable", {"disabled": False})


async def test_rotate_stops_the_old_secret_at_once(admin):
    created = await create(admin, "rotating", balance=3)
    assert (await admin.get("/api/account/info", headers=tenant(created))).status == 200  # cached now
    status, body = await call(admin, "POST", f"/accounts/{created['api_key']}/rotate-secret")
    assert status == 200
    new_secret = body["data"]["api_secret"]
    assert body["data"]["api_key"] == created["api_key"] and new_secret != created["api_secret"]
    assert (await admin.get("/api/account/info", headers=tenant(created))).status == 401
    assert (await admin.get("/api/account/info", headers=tenant(created, new_secret))).status == 200
    [entry, _] = await audit(admin)
    assert (entry["action"], entry["before"], entry["after"]) == ("rotate-secret", {}, {})
    for secret in (created["api_secret"], new_secret):
        assert secret not in json.dumps(await audit(admin))


# -- delivery callbacks ----------------------------------------------------------------------------

HOOKS = "https://hooks.example.com/sms/"


async def test_callback_settings_are_patched_checked_and_audited(admin):
    created = await create(admin, "hooks")
    assert (created["callback_url"], created["callback_prefixes"]) == (None, [])
    assert created["callback_signed"] is False
    path = f"/accounts/{created['api_key']}"
    status, body = await call(
        admin, "PATCH", path, json={"callback_prefixes": [HOOKS], "callback_url": HOOKS + "in"}
    )
    assert status == 200, body
    assert (body["data"]["callback_url"], body["data"]["callback_prefixes"]) == (HOOKS + "in", [HOOKS])
    [entry, _] = await audit(admin)
    assert (entry["action"], entry["before"], entry["after"]) == (
        "update",
        {"callback_prefixes": [], "callback_url": None},
        {"callback_prefixes": [HOOKS], "callback_url": HOOKS + "in"},
    )
    # outside the prefixes, or prefixes that would leave the URL outside: 400 with the reason
    for refused in (
        {"callback_url": "https://intranet.local/x"},
        {"callback_url": "https://hooks.example.com.evil.net/sms/"},
        {"callback_prefixes": ["https://other.example.com/"]},
        {"callback_prefixes": ["hooks.example.com"]},
        {"callback_url": 5},
    ):
        status, answer = await call(admin, "PATCH", path, json=refused)
        assert (status, answer["code"]) == (400, "INVALID_PARAMS"), refused
        assert "callback_" in answer["message"], answer
    status, body = await call(admin, "PATCH", path, json={"callback_url": None})
    assert (status, body["data"]["callback_url"], body["data"]["callback_prefixes"]) == (200, None, [HOOKS])
    assert len(await audit(admin)) == 3  # the refused ones changed nothing


async def test_the_callback_secret_is_shown_once_and_never_in_the_audit(admin):
    created = await create(admin, "signing")
    path = f"/accounts/{created['api_key']}/callback-secret"
    status, body = await call(admin, "POST", path)
    assert status == 200, body
    first = body["data"]["callback_secret"]
    assert len(first) >= 32
    _, again = await call(admin, "POST", path)
    second = again["data"]["callback_secret"]
    assert second != first
    account = await admin.app[STORE].account_by_key(created["api_key"])
    assert account.callback_secret == second  # kept as is: it must sign
    _, listed = await call(admin, "GET", "/accounts")
    [shown] = [a for a in listed["data"]["accounts"] if a["name"] == "signing"]
    assert shown["callback_signed"] is True
    entries = await audit(admin)
    assert [(e["action"], e["before"], e["after"]) for e in entries[:2]] == [
        ("callback-secret", {}, {}),
        ("callback-secret", {}, {}),
    ]
    for secret in (first, second):
        assert secret not in json.dumps(entries) and secret not in json.dumps(listed)
    status, answer = await call(admin, "POST", "/accounts/sk_nobody/callback-secret")
    assert (status, answer["code"]) == (404, "NOT_FOUND")


async def dead_events(admin, api_key: str, count: int) -> None:
    """``count`` events of the account, given up on (as the deliverer would after 24 h)."""
    store = admin.app[STORE]
    account = await store.account_by_key(api_key)
    await store.update_account(api_key, callback_prefixes=(HOOKS,))
    records = [
        NewRecord(f"dead-{n}", "138****8000", "1", "mock", 50, f"h{n}", HOOKS + "x") for n in range(count)
    ]
    assert await store.reserve(account.id, records, 1000)
    await store.settle(
        account.id, [Settlement(r.message_id, "success", "mock", 50) for r in records], 1000, "2024-05-01"
    )
    for event in await store.claim_callbacks(2000, 1000, 100, "test"):
        await store.finish_callbacks("test", [(event.event_id, "dead", None, "HTTP 500")], 3000)


async def test_dead_callbacks_are_listed_and_replayed_audited(admin):
    created = await create(admin, "hooked", balance=10)
    key = created["api_key"]
    await dead_events(admin, key, 3)
    status, body = await call(
        admin, "GET", f"/accounts/{key}/callbacks", params={"state": "dead", "per_page": 2}
    )
    assert status == 200, body
    page = body["data"]
    assert (page["total"], page["page"], page["per_page"], len(page["events"])) == (3, 1, 2, 2)
    event = page["events"][0]
    assert (event["type"], event["url"], event["attempts"], event["last_error"]) == (
        "accepted",
        HOOKS + "x",
        1,
        "HTTP 500",
    )
    assert event["message_id"].startswith("dead-") and event["created_at"].endswith("+08:00")
    status, body = await call(admin, "POST", f"/accounts/{key}/callbacks/replay")
    assert (status, body["data"]) == (200, {"replayed": 3})
    [entry, *_] = await audit(admin)
    assert (entry["action"], entry["before"], entry["after"]) == ("callback-replay", {}, {"replayed": 3})
    _, body = await call(admin, "GET", f"/accounts/{key}/callbacks", params={"state": "dead"})
    assert body["data"]["total"] == 0
    for bad in ({"state": "pending"}, {"state": "dead", "page": "0"}):
        status, answer = await call(admin, "GET", f"/accounts/{key}/callbacks", params=bad)
        assert (status, answer["code"]) == (400, "INVALID_PARAMS")
    for method, path in (
        ("GET", "/accounts/sk_nobody/callbacks?state=dead"),
        ("POST", "/accounts/sk_nobody/callbacks/replay"),
    ):
        status, answer = await call(admin, method, path)
        assert (status, answer["code"]) == (404, "NOT_FOUND")


# -- top-ups ---------------------------------------------------------------------------------------


async def balance(client, api_key: str) -> float:
    return (await client.app[STORE].account_by_key(api_key)).balance_milli / 1000


async def test_a_top_up_credits_and_records_its_reason(admin):
    created = await create(admin, "payer", balance=1.5)
    status, body = await call(
        admin, "POST", f"/accounts/{created['api_key']}/topup", json={"amount": 7.25, "reason": "invoice 42"}
    )
    assert (status, body["data"]["balance"]) == (200, 8.75)
    [entry, _] = await audit(admin)
    assert (entry["action"], entry["reason"]) == ("topup", "invoice 42")
    assert (entry["before"], entry["after"]) == ({"balance": 1.5}, {"balance": 8.75})


async def test_the_same_idempotency_key_tops_up_once(admin):
    created = await create(admin, "once")
    path = f"/accounts/{created['api_key']}/topup"
    headers = {**ALICE, "Idempotency-Key": "topup-2024-001"}
    first = await admin.post(API + path, json={"amount": 5, "reason": "r"}, headers=headers)
    second = await admin.post(API + path, json={"amount": 5, "reason": "r"}, headers=headers)
    assert (first.status, second.status) == (200, 200)
    assert await first.json() == await second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await balance(admin, created["api_key"]) == 5.0
    conflict = await admin.post(API + path, json={"amount": 6, "reason": "r"}, headers=headers)
    assert (conflict.status, (await conflict.json())["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    other_admin = await admin.post(
        API + path, json={"amount": 5, "reason": "r"}, headers={**BOB, "Idempotency-Key": "topup-2024-001"}
    )
    assert other_admin.status == 200  # keys are each admin's own
    assert await balance(admin, created["api_key"]) == 10.0
    assert [e["action"] for e in await audit(admin)] == ["topup", "topup", "create"]


async def test_concurrent_top_ups_with_one_key_credit_once(admin):
    created = await create(admin, "rush")
    headers = {**ALICE, "Idempotency-Key": "rush-1"}
    responses = await asyncio.gather(
        *(
            admin.post(
                API + f"/accounts/{created['api_key']}/topup",
                json={"amount": 1, "reason": "r"},
                headers=headers,
            )
            for _ in range(8)
        )
    )
    assert {response.status for response in responses} == {200}
    assert await balance(admin, created["api_key"]) == 1.0


async def test_without_a_key_each_top_up_counts(admin):
    created = await create(admin, "twice")
    for _ in range(2):
        await call(admin, "POST", f"/accounts/{created['api_key']}/topup", json={"amount": 1, "reason": "r"})
    assert await balance(admin, created["api_key"]) == 2.0


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "reason": "r"},
        {"amount": -1, "reason": "r"},
        {"amount": 0.0005, "reason": "r"},
        {"amount": 1},
        {"amount": 1, "reason": ""},
        {"amount": 1, "reason": "x" * 201},
        {"reason": "r"},
        {"amount": "1", "reason": "r"},
        {"amount": 1, "reason": "r", "extra": True},
        {"amount": -0.0, "reason": "r"},
        {"amount": 1e-4, "reason": "r"},
        {"amount": 1, "reason": "   "},
        {"amount": None, "reason": "r"},
        {"amount": True, "reason": "r"},
        {"amount": [1], "reason": "r"},
        b'{"amount": 1.00000000000000001, "reason": "r"}',
        b'{"amount": 1e400, "reason": "r"}',
        b'{"amount": -0, "reason": "r"}',
        b'{"amount": 0.0000, "reason": "r"}',
    ],
)
async def test_a_bad_top_up_is_400_and_frees_its_key(admin, body):
    """Amounts are read exactly: 1.00000000000000001 is refused, not rounded to 1."""
    headers = {**ALICE, "Idempotency-Key": "k-1"}
    sent = (
        {"data": body, "headers": {**headers, "Content-Type": "application/json"}}
        if isinstance(body, bytes)
        else {"json": body, "headers": headers}
    )
    status, answer = await call(admin, "POST", f"/accounts/{DEMO_KEY}/topup", **sent)
    assert (status, answer["code"]) == (400, "INVALID_PARAMS")
    status, _ = await call(
        admin, "POST", f"/accounts/{DEMO_KEY}/topup", json={"amount": 1, "reason": "r"}, headers=headers
    )
    assert status == 200 and await balance(admin, DEMO_KEY) == 101.0


# -- messages and the audit log --------------------------------------------------------------------


async def test_a_message_is_found_by_its_id_masked_with_its_account(admin):
    created = await create(admin, "writer", balance=1)
    sent = await admin.post("/api/sms/send", json=SEND_BODY, headers=tenant(created))
    message_id = (await sent.json())["data"]["message_id"]
    await admin.post("/api/sms/send", json={**SEND_BODY, "phone": "13900139000"}, headers=DEMO_HEADERS)
    status, body = await call(admin, "GET", f"/messages/{message_id}")
    assert status == 200
    assert body["data"]["account"] == {"name": "writer", "api_key": created["api_key"]}
    record = body["data"]["record"]
    assert (record["message_id"], record["phone"], record["status"]) == (message_id, "138****8000", "success")
    assert (record["id"], record["provider"], record["price"]) == (1, "mock", 0.05)
    assert "13800138000" not in json.dumps(body)


async def test_the_audit_log_pages_newest_first(admin):
    for number in range(5):
        await create(admin, f"acct-{number}")
    status, body = await call(admin, "GET", "/audit", params={"page": 2, "per_page": 2})
    assert status == 200
    data = body["data"]
    assert (data["total"], data["page"], data["per_page"]) == (6, 2, 2)  # and the config's demo
    assert [e["account"]["name"] for e in data["entries"]] == ["acct-2", "acct-1"]
    assert data["entries"][0]["id"] > data["entries"][1]["id"]
    assert data["entries"][0]["time"].endswith("+08:00")  # server.timezone's offset
    for query in ({"page": 0}, {"per_page": 101}, {"page": "x"}, {"per_page": "1e2"}):
        status, answer = await call(admin, "GET", "/audit", params=query)
        assert (status, answer["code"]) == (400, "INVALID_PARAMS")


async def test_a_store_outage_is_503_never_500(admin, monkeypatch):
    async def down(*args, **kwargs):
        raise StoreUnavailable("down for the test")

    inner = admin.app[STORE].inner
    for name in ("list_accounts", "create_account", "audit_page", "find_message", "top_up"):
        monkeypatch.setattr(inner, name, down)
    for method, path, body in (
        ("GET", "/accounts", None),
        ("POST", "/accounts", {"name": "x"}),
        ("GET", "/audit", None),
        ("GET", "/messages/m-1", None),
        ("POST", f"/accounts/{DEMO_KEY}/topup", {"amount": 1, "reason": "r"}),
    ):
        status, answer = await call(admin, method, path, json=body)
        assert (status, answer["code"]) == (503, "UNAVAILABLE"), path

"""Idempotency-Key over real HTTP, on both stores: replay, conflict, concurrency, what is kept, expiry."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from gateway.api import idempotency, sms
from gateway.api.idempotency import LEASE_MS, TTL_MS, fingerprint_of, stored_key
from gateway.ids import derived_uuid
from gateway.keys import CONFIG, RUNTIME, STORE
from gateway.store.records import NewRecord, RecordQuery, Settlement
from tests.conftest import SEND_BODY, FakeClock, add_account

BATCH_BODY = {"phones": ["13800138000", "13900139000"], "template_id": "123456", "params": {"code": "1234"}}
REFUSING = {"providers": {"backends": {"mock": {"fail_rate": 1.0}}}}


async def team(client, name="team", balance_milli=100_000):
    account, headers = await add_account(client, name, balance_milli=balance_milli)
    return account, headers


async def post(client, headers, key, body=SEND_BODY, path="/api/sms/send"):
    extra = {} if key is None else {"Idempotency-Key": key}
    response = await client.post(path, json=body, headers={**headers, **extra})
    return response.status, await response.read(), response


async def sent(client, account) -> tuple[int, int]:
    """(records written, balance) of the account."""
    store = client.app[STORE]
    page = await store.records(account.id, RecordQuery(per_page=100))
    return page.total, (await store.account_by_key(account.api_key)).balance_milli


async def test_the_same_key_and_body_replays_the_first_response_and_sends_once(make_client, store_backend):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    status, body, first = await post(client, headers, "order-1")
    assert status == 200
    assert "Idempotent-Replayed" not in first.headers
    for _ in range(2):
        again_status, again_body, again = await post(client, headers, "order-1")
        assert (again_status, again_body) == (status, body)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert await sent(client, account) == (1, 100_000 - 50)
    assert b"13800138000" not in body


async def test_batch_send_replays_too(make_client, store_backend):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    first = await post(client, headers, "batch-1", BATCH_BODY, "/api/sms/batch-send")
    again = await post(client, headers, "batch-1", BATCH_BODY, "/api/sms/batch-send")
    assert first[0] == 200
    assert first[:2] == again[:2]
    assert await sent(client, account) == (2, 100_000 - 100)


async def test_the_same_key_with_another_body_or_route_is_409_and_sends_nothing(make_client, store_backend):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    assert (await post(client, headers, "k"))[0] == 200
    other = {**SEND_BODY, "phone": "13900139000"}
    for body, path in ((other, "/api/sms/send"), (BATCH_BODY, "/api/sms/batch-send")):
        status, raw, _ = await post(client, headers, "k", body, path)
        assert status == 409
        assert b'"IDEMPOTENCY_CONFLICT"' in raw
    assert await sent(client, account) == (1, 100_000 - 50)


async def test_keys_belong_to_one_account(make_client, store_backend):
    client = await make_client(**store_backend)
    first, first_headers = await team(client, "first")
    second, second_headers = await team(client, "second")
    one = await post(client, first_headers, "shared")
    two = await post(client, second_headers, "shared", {**SEND_BODY, "phone": "13900139000"})
    assert one[0] == two[0] == 200
    assert one[1] != two[1]
    assert await sent(client, first) == (1, 100_000 - 50)
    assert await sent(client, second) == (1, 100_000 - 50)


async def test_concurrent_requests_with_one_key_send_once(make_client, store_backend):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    answers = await asyncio.gather(*(post(client, headers, "burst") for _ in range(5)))
    assert {(status, body) for status, body, _ in answers} == {(200, answers[0][1])}
    assert sum("Idempotent-Replayed" in response.headers for *_, response in answers) == 4
    assert await sent(client, account) == (1, 100_000 - 50)


async def test_a_carrier_refusal_is_kept_and_replayed_not_sent_again(make_client, store_backend):
    client = await make_client(**store_backend, **REFUSING)
    account, headers = await team(client)
    first = await post(client, headers, "refused")
    again = await post(client, headers, "refused")
    assert first[0] == 502
    assert first[:2] == again[:2]
    assert (await sent(client, account))[0] == 1


@pytest.mark.parametrize("path", ["/api/sms/send", "/api/sms/batch-send"])
async def test_a_crash_after_sending_keeps_the_key_with_its_500(
    make_client, store_backend, monkeypatch, path
):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    body = SEND_BODY if path == "/api/sms/send" else BATCH_BODY
    sender = client.app[RUNTIME].current.sender
    send = sender.send

    async def send_then_crash(*args):
        await send(*args)
        raise RuntimeError("a bug after the carrier was called")

    monkeypatch.setattr(sender, "send", send_then_crash)
    first = await post(client, headers, "crashed", body, path)
    assert first[0] == 500
    assert b'"INTERNAL_ERROR"' in first[1]
    monkeypatch.undo()  # fixed: a retry with the key must still not send again
    again = await post(client, headers, "crashed", body, path)
    assert again[:2] == first[:2]
    assert again[2].headers["Idempotent-Replayed"] == "true"
    assert (await sent(client, account))[0] == len(body.get("phones", [None]))


@pytest.mark.parametrize("path", ["/api/sms/send", "/api/sms/batch-send"])
async def test_a_request_refused_before_sending_frees_its_key(make_client, store_backend, path):
    client = await make_client(**store_backend)
    account, headers = await team(client, balance_milli=10)
    body = SEND_BODY if path == "/api/sms/send" else BATCH_BODY
    status, raw, _ = await post(client, headers, "retry-me", body, path)
    assert status == 403
    assert b"INSUFFICIENT_BALANCE" in raw
    await client.app[STORE].top_up(account.api_key, 100_000)
    status, _, response = await post(client, headers, "retry-me", body, path)
    assert status == 200
    assert "Idempotent-Replayed" not in response.headers
    replay = await post(client, headers, "retry-me", body, path)
    assert replay[2].headers["Idempotent-Replayed"] == "true"


async def test_a_bug_before_sending_frees_its_key(make_client, store_backend, monkeypatch):
    """Nothing reached a carrier, so the key must not keep a 500 for 24 hours."""
    client = await make_client(**store_backend)
    account, headers = await team(client)

    async def broken(*args):
        raise RuntimeError("a bug while checking the request")

    monkeypatch.setattr(sms, "decoded_body", broken)
    assert (await post(client, headers, "bug-first"))[0] == 500
    monkeypatch.undo()
    status, _, response = await post(client, headers, "bug-first")
    assert status == 200 and "Idempotent-Replayed" not in response.headers
    assert (await sent(client, account))[0] == 1


async def test_an_invalid_body_frees_its_key_for_the_corrected_request(make_client, store_backend):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    assert (await post(client, headers, "fix-me", {"phone": "12345", "template_id": "123456"}))[0] == 400
    assert (await post(client, headers, "fix-me"))[0] == 200
    assert await sent(client, account) == (1, 100_000 - 50)


async def test_a_key_expires_after_24_hours(make_client, store_backend):
    clock = FakeClock(time.time())
    client = await make_client(clock=clock, **store_backend)
    account, headers = await team(client)
    first = await post(client, headers, "daily")
    clock.advance(24 * 3600 - 1)
    assert (await post(client, headers, "daily"))[:2] == first[:2]
    assert (await sent(client, account))[0] == 1
    clock.advance(1)
    fresh = await post(client, headers, "daily")
    assert fresh[0] == 200
    assert fresh[1] != first[1]
    assert (await sent(client, account))[0] == 2


@pytest.mark.parametrize("key", ["", "with space", "x" * 129, "tab\tinside", "ключ"])
async def test_an_invalid_key_is_400_and_sends_nothing(make_client, store_backend, key):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    response = await client.post(
        "/api/sms/send",
        json=SEND_BODY,
        headers={**headers, "Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status == 400
    assert (await response.json())["code"] == "INVALID_PARAMS"
    assert (await sent(client, account))[0] == 0


async def test_the_longest_widest_key_is_accepted(make_client, store_backend):
    client = await make_client(**store_backend)
    account, headers = await team(client)
    key = "".join(chr(c) for c in range(0x21, 0x7F)) + "k" * (128 - 94)
    first = await post(client, headers, key)
    assert first[0] == 200
    assert (await post(client, headers, key))[:2] == first[:2]
    assert (await sent(client, account))[0] == 1


# -- a claim left in progress by a crash -----------------------------------------------------------

LEASE_S = LEASE_MS / 1000


async def crashed(
    client, clock, account, key, body=SEND_BODY, path="/api/sms/send", *, reserved=True, settled=False
) -> str:
    """Leave ``key`` as a gateway killed mid-send does: claimed, never finished; with the send's
    records reserved (ids derived from the claim's token) or not, settled or not. The token."""
    store, token = client.app[STORE], "dead-attempt-token"
    raw = orjson.dumps(body)
    stored = stored_key(client.app[CONFIG].server.secret_key, key)  # as the gateway keeps it
    claim = await store.claim_idempotency(
        account.id, stored, fingerprint_of(path, raw), token, int(clock() * 1000), TTL_MS, LEASE_MS
    )
    assert claim.state == "new"
    phones = body.get("phones") or [body["phone"]]
    records = [
        NewRecord(derived_uuid(token, i), "138****8000", "123456", "mock", 50, f"h{i}")
        for i in range(len(phones))
    ]
    if reserved:
        assert await store.reserve(account.id, records, int(clock() * 1000))
    if settled:
        await store.settle(
            account.id,
            [Settlement(r.message_id, "success", "mock", 50, f"c{i}") for i, r in enumerate(records)],
            int(clock() * 1000),
            "2024-05-01",
        )
    return token


async def raw_post(client, headers, key, body=SEND_BODY, path="/api/sms/send"):
    """As ``post``, with the body bytes ``crashed`` fingerprinted."""
    response = await client.post(
        path,
        data=orjson.dumps(body),
        headers={**headers, "Idempotency-Key": key, "Content-Type": "application/json"},
    )
    return response.status, await response.read(), response


async def test_a_crash_mid_send_is_409_until_the_lease_then_504_refunded_and_kept(
    make_client, store_backend, monkeypatch
):
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.2)  # a retry's wait on the dead holder
    clock = FakeClock(time.time())
    client = await make_client(clock=clock, **store_backend)
    account, headers = await team(client)
    token = await crashed(client, clock, account, "crash")
    assert await sent(client, account) == (1, 100_000 - 50)
    clock.advance(LEASE_S - 1)
    status, raw, _ = await raw_post(client, headers, "crash")
    assert (status, orjson.loads(raw)["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    clock.advance(1)
    status, raw, response = await raw_post(client, headers, "crash")
    assert (status, orjson.loads(raw)["code"]) == (504, "PROVIDER_TIMEOUT")
    assert response.headers["Idempotent-Replayed"] == "true"
    assert await sent(client, account) == (1, 100_000)  # refunded, nothing sent again
    listed = await client.get("/api/sms/records", headers=headers)
    [record] = (await listed.json())["data"]["records"]
    assert record["message_id"] == derived_uuid(token, 0)
    assert (record["status"], record["price"]) == ("failed", 0)
    assert record["error"].startswith("OUTCOME_UNKNOWN")
    clock.advance(LEASE_S)
    again = await raw_post(client, headers, "crash")
    assert again[:2] == (status, raw)
    assert again[2].headers["Idempotent-Replayed"] == "true"
    assert await sent(client, account) == (1, 100_000)


async def test_a_crash_after_the_carrier_took_a_batch_replays_its_success(make_client, store_backend):
    clock = FakeClock(time.time())
    client = await make_client(clock=clock, **store_backend)
    account, headers = await team(client)
    path = "/api/sms/batch-send"
    token = await crashed(client, clock, account, "took", BATCH_BODY, path, settled=True)
    clock.advance(LEASE_S)
    status, raw, response = await raw_post(client, headers, "took", BATCH_BODY, path)
    assert status == 200 and response.headers["Idempotent-Replayed"] == "true"
    data = orjson.loads(raw)["data"]
    assert (data["success_count"], data["failed_count"]) == (2, 0)
    assert [r["message_id"] for r in data["results"]] == [derived_uuid(token, i) for i in range(2)]
    assert await sent(client, account) == (2, 100_000 - 100)  # charged once, sent once


async def test_a_crash_before_reserving_sends_once_after_the_lease(make_client, store_backend):
    clock = FakeClock(time.time())
    client = await make_client(clock=clock, **store_backend)
    account, headers = await team(client)
    token = await crashed(client, clock, account, "never", reserved=False)
    clock.advance(LEASE_S)
    status, raw, response = await raw_post(client, headers, "never")
    assert status == 200 and "Idempotent-Replayed" not in response.headers
    assert orjson.loads(raw)["data"]["message_id"] == derived_uuid(token, 0)
    assert await sent(client, account) == (1, 100_000 - 50)
    again = await raw_post(client, headers, "never")
    assert again[:2] == (status, raw) and again[2].headers["Idempotent-Replayed"] == "true"
    assert await sent(client, account) == (1, 100_000 - 50)


async def test_concurrent_retries_after_the_lease_send_once(make_client, store_backend):
    clock = FakeClock(time.time())
    client = await make_client(clock=clock, **store_backend)
    account, headers = await team(client)
    await crashed(client, clock, account, "herd", reserved=False)
    clock.advance(LEASE_S)
    answers = await asyncio.gather(*(raw_post(client, headers, "herd") for _ in range(4)))
    assert {(status, body) for status, body, _ in answers} == {(200, answers[0][1])}
    assert sum("Idempotent-Replayed" not in response.headers for *_, response in answers) == 1
    assert await sent(client, account) == (1, 100_000 - 50)

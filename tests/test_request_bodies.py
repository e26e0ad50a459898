"""JSON request bodies on every route that takes one: a duplicate key is refused (issue 23.11), and
what the decoder refuses is said in the API's language, naming the field (issue 23.13).

Over real HTTP on a gateway with the admin API on; each refusal is checked to have changed nothing.
"""

from __future__ import annotations

import re

import pytest

from gateway.keys import STORE
from gateway.store.records import RecordQuery
from tests.conftest import DEMO_HEADERS, DEMO_KEY

ADMIN_TOKEN = "ops-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
TENANT = {**DEMO_HEADERS, "Content-Type": "application/json"}
SEND, BATCH = "/api/sms/send", "/api/sms/batch-send"
CREATE, PATCH = "/admin/api/accounts", f"/admin/api/accounts/{DEMO_KEY}"
TOPUP = f"{PATCH}/topup"
METHOD = {SEND: "POST", BATCH: "POST", CREATE: "POST", PATCH: "PATCH", TOPUP: "POST"}
# What msgspec and the account rules say in English; none of it may reach a caller.
ENGLISH = re.compile(
    r"Expected|Object|\bgot\b|Invalid|malformed|truncated|length|\bfield\b|\bmust\b|characters|"
    r"unknown|yuan|tokens|decimals|out of range|JSON is|Input data|\bat `|\$\.|\ba (name|reason)\b"
)


@pytest.fixture
async def gateway(make_client):
    return await make_client(admin={"tokens": [{"name": "ops", "token": ADMIN_TOKEN}]})


async def post(client, path: str, body: bytes) -> tuple[int, dict]:
    headers = TENANT if path.startswith("/api/") else ADMIN
    response = await client.request(METHOD[path], path, data=body, headers=headers)
    return response.status, await response.json()


async def nothing_changed(client) -> None:
    store = client.app[STORE]
    demo = await store.account_by_key(DEMO_KEY)
    assert (demo.balance_milli, demo.disabled, demo.rate) == (100_000, False, 1000)
    assert [account.name for account in await store.list_accounts()] == ["demo"]
    assert (await store.records(demo.id, RecordQuery())).total == 0
    # The config's own entry (it created the demo account) is the only one.
    assert [entry.actor for entry in (await store.audit_page(1, 10)).entries] == ["config"]


# -- duplicate keys (issue 23.11) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        (TOPUP, b'{"amount": 1, "reason": "r", "amount": 1000}', "amount"),  # the issue's: credited 1000
        (SEND, b'{"phone": "13800138000", "phone": "13900139000", "template_id": "123456"}', "phone"),
        (SEND, b'{"phone": 13900139000, "phone": "13800138000", "template_id": "123456"}', "phone"),
        (
            SEND,
            b'{"phone": "13800138000", "template_id": "123456", "params": {"code": "1", "code": "2"}}',
            "code",
        ),
        (
            SEND,
            b'{"phone": "13800138000", "template_id": "123456", "params": {"ab": "1", "a\\u0062": "2"}}',
            "ab",
        ),  # the same key spelt two ways
        (
            SEND,
            b'{"phone": "13800138000", "provider": "mock" , "template_id": "123456", "provider" : "x"}',
            "provider",
        ),
        (BATCH, b'{"phones": ["13800138000"], "template_id": "x", "template_id": "123456"}', "template_id"),
        (CREATE, b'{"name": "a", "name": "b"}', "name"),
        (CREATE, b'{"name": "a", "ratelimit": {"rate": 1, "burst": 2, "rate": 1000}}', "rate"),
        (PATCH, b'{"disabled": true, "disabled": false}', "disabled"),
    ],
)
async def test_a_duplicate_key_is_400_on_every_route_and_changes_nothing(gateway, path, body, key):
    status, answer = await post(gateway, path, body)
    assert (status, answer["code"]) == (400, "INVALID_PARAMS"), answer
    assert answer["message"] == f"请求参数错误:JSON 对象中有重复的键 '{key}'"
    await nothing_changed(gateway)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (SEND, b'{"phone": "13800138000", "template_id": "123456", "params": {"code": "a\\": b"}}'),
        (SEND, b'{"phone": "13800138000", "template_id": "123456", "params": {}}'),  # at its default
        (
            BATCH,
            b'{"phones": ["13800138000"], "template_id": "123456", "params": {"provider": "mock"},'
            b' "provider": "mock"}',
        ),  # one name in two objects
        (CREATE, b'{"name": "keys", "ratelimit": null, "providers": [], "balance": 0}'),
        (TOPUP, b'{"amount": 1, "reason": "\\"amount\\": 1000"}'),
    ],
)
async def test_bodies_without_a_repeated_key_are_taken(gateway, path, body):
    status, answer = await post(gateway, path, body)
    assert status in (200, 201), answer


@pytest.mark.parametrize("depth", [200, 1000])
async def test_a_deeply_nested_body_that_may_repeat_a_key_is_400_not_500(gateway, depth):
    """The plain decoder takes what the model refuses, nested up to its own limit: counting its
    keys and parsing it again must not run out of stack."""
    body = (
        b'{"phone": "13800138000", "template_id": "123456", "note": "\\": 1", "params": '
        + b'{"a": ' * depth
        + b"1"
        + b"}" * depth
        + b"}"
    )
    status, answer = await post(gateway, SEND, body)
    assert (status, answer["code"]) == (400, "INVALID_PARAMS"), answer
    await nothing_changed(gateway)


# -- the decoder's refusals in the API's language (issue 23.13) -----------------------------------------

ONLY_CONFIGURED = "只能列出已配置的服务商(mock),每个一次"
#: A top-up amount is checked by the account rules (read exactly, as Decimal), one message for all.
AMOUNT = "amount 须为大于 0 的金额(元),不超过 1000000000,最多 3 位小数"


def refusals(path: str, *cases: tuple[bytes, str]) -> list[tuple[str, bytes, str]]:
    """``(path, body, said)`` for each of one route's ``(body, said)``."""
    return [(path, body, said) for body, said in cases]


ADMIN_BODIES = [
    *refusals(
        TOPUP,
        (b'{"amount": 0, "reason": "r"}', AMOUNT),
        (b'{"amount": -1, "reason": "r"}', AMOUNT),
        (b'{"amount": 1e10, "reason": "r"}', AMOUNT),
        (b'{"amount": 1e999, "reason": "r"}', AMOUNT),
        (b'{"amount": "1", "reason": "r"}', AMOUNT),
        (b'{"amount": 0.0005, "reason": "r"}', AMOUNT),
        (b'{"amount": 1}', "缺少 reason"),
        (b'{"reason": "r"}', "缺少 amount"),
        (b'{"amount": 1, "reason": ""}', "reason 不能为空"),
        (b'{"amount": 1, "reason": "   "}', "reason 须为 1-200 个字符,且不能只有空白"),
        (b'{"amount": 1, "reason": "' + b"x" * 201 + b'"}', "reason 最长 200 个字符"),
        (b'{"amount": 1, "reason": "r", "extra": true}', "未知参数 'extra'"),
        (b'{"amount": 1, "reason": null}', "reason 应为字符串,收到 null"),
    ),
    *refusals(
        CREATE,
        (b"", "请求体不是合法的 JSON"),
        (b"{", "请求体不是合法的 JSON"),
        (b'{"name": "x"} trailing', "请求体不是合法的 JSON"),
        (b"\xff", "请求体不是合法的 JSON"),
        (b"[]", "请求体必须是 JSON 对象"),
        (b'"x"', "请求体必须是 JSON 对象"),
        (b"{}", "缺少 name"),
        (b'{"name": ""}', "name 不能为空"),
        (
            b'{"name": "   "}',
            "name 须为 1-64 个字符(去掉首尾空白后),不能含控制字符、格式字符或 7 位以上的连续数字",
        ),
        (b'{"name": 5}', "name 应为字符串,收到数字"),
        (b'{"name": "' + b"x" * 65 + b'"}', "name 最长 64 个字符"),
        (b'{"name": "x", "balance": -1}', "balance 须为 0-1000000000 元,最多 3 位小数"),
        (b'{"name": "x", "balance": 0.0001}', "balance 须为 0-1000000000 元,最多 3 位小数"),
        (b'{"name": "x", "balance": true}', "balance 须为 0-1000000000 元,最多 3 位小数"),
        (b'{"name": "x", "verification_status": "maybe"}', "verification_status 取值无效"),
        (b'{"name": "x", "ratelimit": {"rate": 1}}', "缺少 ratelimit.burst"),
        (b'{"name": "x", "ratelimit": {"rate": 0, "burst": 1}}', "ratelimit.rate 应不小于 0.001"),
        (b'{"name": "x", "ratelimit": {"rate": 1, "burst": 1.5}}', "ratelimit.burst 应为整数,收到数字"),
        (b'{"name": "x", "ratelimit": {"rate": 1, "burst": 0}}', "ratelimit.burst 应不小于 1"),
        (b'{"name": "x", "ratelimit": {"rate": 1, "burst": 1, "x": 1}}', "未知参数 'ratelimit.x'"),
        (b'{"name": "x", "ratelimit": []}', "ratelimit 应为对象或 null,收到数组"),
        (b'{"name": "x", "providers": "mock"}', "providers 应为数组,收到字符串"),
        (b'{"name": "x", "providers": ["mock", 5]}', "providers 第 2 项 应为字符串,收到数字"),
        (b'{"name": "x", "providers": ["nowhere"]}', f"providers {ONLY_CONFIGURED}"),
        (b'{"name": "x", "providers": ["mock", "mock"]}', f"providers {ONLY_CONFIGURED}"),
        (b'{"name": "x", "providers": [' + b'"mock",' * 64 + b'"mock"]}', "providers 最多 64 项"),
        (b'{"name": "x", "api_key": "sk_mine"}', "未知参数 'api_key'"),
        (b'{"name": "x", "13912345678": 1}', "未知参数 '139****5678'"),
    ),
    *refusals(
        PATCH,
        (b'{"disabled": "yes"}', "disabled 应为布尔值,收到字符串"),
        (b'{"disabled": null}', "disabled 应为布尔值,收到 null"),
        (b'{"verification_status": 1}', "verification_status 应为字符串,收到数字"),
        (b'{"ratelimit": {"rate": -1, "burst": 1}}', "ratelimit.rate 应不小于 0.001"),
    ),
]


@pytest.mark.parametrize(("path", "body", "said"), ADMIN_BODIES)
async def test_an_admin_refusal_is_in_chinese_and_names_the_field(gateway, path, body, said):
    status, answer = await post(gateway, path, body)
    assert (status, answer["code"]) == (400, "INVALID_PARAMS"), answer
    assert answer["message"] == f"请求参数错误:{said}"
    assert not ENGLISH.search(answer["message"]), answer["message"]
    await nothing_changed(gateway)

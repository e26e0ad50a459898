"""The example carrier package (examples/smsedge-example-carrier), registered as an installed one.

It is not pip-installed: its folder goes on ``sys.path`` and a dist-info holding the entry points
its own ``pyproject.toml`` declares goes beside it, which is what ``pip install`` leaves behind.
A real gateway then sends through it to a fake upstream over loopback HTTP.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest
from aiohttp import web

from gateway.carriers import registry
from gateway.carriers.registry import ENTRY_POINT_GROUP, carrier_class
from gateway.config.loader import parse_config
from gateway.config.reader import ConfigError
from tests.conftest import ROOT, add_account, merge

PACKAGE = ROOT / "examples" / "smsedge-example-carrier"
TOKEN = "ex-token-0123456789"
BLOCKED = "+8613900139000"


@pytest.fixture
def example_installed(tmp_path, monkeypatch):
    """The package importable and its entry points registered, as ``pip install`` would leave them."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["entry-points"][ENTRY_POINT_GROUP]
    info = tmp_path / "site" / f"smsedge_example_carrier-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in declared.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}", encoding="utf-8")
    registry._entry_point_targets.cache_clear()
    monkeypatch.syspath_prepend(str(PACKAGE))
    monkeypatch.syspath_prepend(str(info.parent))
    yield
    registry._entry_point_targets.cache_clear()
    sys.modules.pop("smsedge_example_carrier", None)


@dataclass
class Upstream:
    """The fake upstream's state: what it answers, and every payload it was sent."""

    status: int = 200
    refuse: tuple[str, ...] = ()
    calls: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


def upstream_app(up: Upstream) -> web.Application:
    async def messages(request: web.Request) -> web.Response:
        up.tokens.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "invalid token"}, status=401)
        payload = await request.json()
        up.calls.append(payload)
        if up.status != 200:
            return web.Response(status=up.status, text="upstream unavailable")
        numbers = [message["to"] for message in payload["messages"]]
        return web.json_response(
            {
                "accepted": [{"to": n, "id": f"ex-{n[-4:]}"} for n in numbers if n not in up.refuse],
                "refused": {
                    n: {"code": "BLOCKED", "message": f"{n} opted out"} for n in numbers if n in up.refuse
                },
            }
        )

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    return app


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


async def example_gateway(aiohttp_server, make_client, upstream, *, retries: int, token: str):
    """A gateway whose only backend is the example package's carrier, sending to ``upstream``."""
    server = await aiohttp_server(upstream_app(upstream))
    backend = {
        "plugin": "example",
        "price": 0.01,
        "retries": retries,
        "endpoint": str(server.make_url("/v1/messages")),
        "token": token,
    }
    client = await make_client(providers={"default": "example", "backends": {"example": backend}})
    _, headers = await add_account(client, "bulk", balance_milli=1_000)
    return client, headers


@pytest.fixture
async def gateway(example_installed, aiohttp_server, make_client, upstream):
    return await example_gateway(aiohttp_server, make_client, upstream, retries=1, token=TOKEN)


async def account_and_records(client, headers):
    info = await (await client.get("/api/account/info", headers=headers)).json()
    page = await (await client.get("/api/sms/records?per_page=100", headers=headers)).json()
    return info["data"], {r["phone"]: r for r in page["data"]["records"]}


async def send(client, headers, phone="13800138000"):
    body = {"phone": phone, "template_id": "SMS_1", "params": {"code": "1234"}}
    response = await client.post("/api/sms/send", json=body, headers=headers)
    return response, await response.json()


def test_the_package_declares_and_resolves_its_entry_point(example_installed):
    found = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert found["example"].value == "smsedge_example_carrier:ExampleCarrier"
    cls = carrier_class("example")
    assert cls.__name__ == "ExampleCarrier"
    assert cls.name == "example"  # the class says the name its entry point registers
    assert cls.__module__ == "smsedge_example_carrier"
    assert str(PACKAGE) in sys.modules[cls.__module__].__file__


async def test_send_goes_through_the_package_with_the_bearer_token(gateway, upstream):
    client, headers = gateway
    response, body = await send(client, headers)
    assert response.status == 200, body
    assert body["data"]["provider"] == "example"
    assert upstream.tokens == [f"Bearer {TOKEN}"]
    [call] = upstream.calls
    assert call == {
        "template": "SMS_1",
        "params": {"code": "1234"},
        "messages": [{"to": "+8613800138000", "reference": body["data"]["message_id"]}],
    }
    account, records = await account_and_records(client, headers)
    assert (account["balance"], account["total_sent"]) == (0.99, 1)
    assert records["138****8000"]["status"] == "success"
    assert records["138****8000"]["provider"] == "example"


async def test_batch_send_is_one_call_with_a_refused_number_refunded(gateway, upstream):
    client, headers = gateway
    upstream.refuse = (BLOCKED,)
    response = await client.post(
        "/api/sms/batch-send",
        headers=headers,
        json={
            "phones": ["13800138000", "13900139000", "13700137000"],
            "template_id": "SMS_1",
            "params": {"code": "1234"},
        },
    )
    body = await response.json()
    assert response.status == 200, body
    data = body["data"]
    assert (data["total"], data["success_count"], data["failed_count"]) == (3, 2, 1)
    assert [r["success"] for r in data["results"]] == [True, False, True]
    assert "BLOCKED" in data["results"][1]["message"]
    assert "13900139000" not in await response.text()  # the upstream quoted it in full
    assert [[m["to"] for m in call["messages"]] for call in upstream.calls] == [
        ["+8613800138000", BLOCKED, "+8613700137000"]
    ]
    account, records = await account_and_records(client, headers)
    assert (account["balance"], account["total_sent"]) == (0.98, 2)  # 3 charged, 1 refunded
    assert {phone: r["status"] for phone, r in records.items()} == {
        "138****8000": "success",
        "139****9000": "failed",
        "137****7000": "success",
    }
    assert "BLOCKED" in records["139****9000"]["error"]


async def test_a_refused_single_send_is_502_recorded_failed_and_refunded(gateway, upstream):
    client, headers = gateway
    upstream.refuse = (BLOCKED,)
    response, body = await send(client, headers, "13900139000")
    assert response.status == 502
    assert body["code"] == "PROVIDER_ERROR"
    assert "BLOCKED" in body["message"]
    assert len(upstream.calls) == 1  # a refusal is final: never retried
    account, records = await account_and_records(client, headers)
    assert (account["balance"], account["total_sent"]) == (1.0, 0)
    assert records["139****9000"]["status"] == "failed"


async def test_an_upstream_5xx_is_retried_then_502_recorded_failed_and_refunded(gateway, upstream):
    client, headers = gateway
    upstream.status = 503
    response, body = await send(client, headers)
    assert response.status == 502
    assert body["code"] == "PROVIDER_ERROR"
    assert "HTTP_503" in body["message"]
    assert len(upstream.calls) == 2  # RETRYABLE: the first call and `retries: 1`
    account, records = await account_and_records(client, headers)
    assert (account["balance"], account["total_sent"]) == (1.0, 0)
    assert records["138****8000"]["status"] == "failed"
    assert "HTTP_503" in records["138****8000"]["error"]


async def test_a_rejected_token_is_permanent_and_not_retried(
    example_installed, aiohttp_server, make_client, upstream
):
    client, headers = await example_gateway(
        aiohttp_server, make_client, upstream, retries=3, token="wrong-token"
    )
    response, body = await send(client, headers)
    assert response.status == 502
    assert "HTTP_401" in body["message"]
    assert upstream.tokens == ["Bearer wrong-token"]
    account, _ = await account_and_records(client, headers)
    assert account["balance"] == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"token": TOKEN}, "providers.backends.example.endpoint: required"),
        ({"endpoint": "ftp://example.net/", "token": TOKEN}, "providers.backends.example.endpoint: "),
        ({"endpoint": "/v1/messages", "token": TOKEN}, "providers.backends.example.endpoint: "),
        ({"endpoint": "https://example.net/v1"}, "providers.backends.example.token: required"),
        ({"endpoint": "https://example.net/v1", "token": "a b"}, "providers.backends.example.token: "),
        (
            {"endpoint": "https://example.net/v1", "token": TOKEN, "colour": "red"},
            "providers.backends.example.colour: unknown key",
        ),
    ],
)
def test_read_options_names_the_bad_key(example_installed, config_document, options, message):
    document = merge(
        config_document,
        {"providers": {"backends": {"example": {"plugin": "example", "price": 0.01, **options}}}},
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert str(caught.value).startswith(message)


def test_the_token_is_not_in_the_options_repr(example_installed, config_document):
    document = merge(
        config_document,
        {
            "providers": {
                "backends": {
                    "example": {
                        "plugin": "example",
                        "price": 0.01,
                        "endpoint": "https://example.net/v1",
                        "token": TOKEN,
                    }
                }
            }
        },
    )
    options = parse_config(document).providers.backends["example"].options
    assert str(options.endpoint) == "https://example.net/v1"
    assert options.token == TOKEN
    assert TOKEN not in repr(options)

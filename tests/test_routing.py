"""providers.routes: each number to its carrier by country, prefix, template and account; weighted
splits; the cheapest healthy backend; the caller's provider and the account's allowed list above
them all. Carriers are test plugins at the network edge (``tests.carriers:RuleCarrier``) with
different prices, so where each number went and what it cost can both be read back."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import yaml

from gateway.config.loader import parse_config
from gateway.config.reader import ConfigError
from gateway.config.references import expand_references
from gateway.keys import RUNTIME, STATUS
from tests.conftest import ROOT, add_account

RULE = "tests.carriers:RuleCarrier"
HK, MO, CN = "+85251234567", "+85366123456", "13800138000"
PRICES = {"cheap": 0.01, "mid": 0.02, "dear": 0.03}


def backends(**extra: dict) -> dict:
    return {name: {"plugin": RULE, "price": price, **extra.get(name, {})} for name, price in PRICES.items()}


async def routed_client(make_client, routes, default="mid", failover=(), **extra):
    return await make_client(
        providers={
            "default": default,
            "failover": list(failover),
            "routes": routes,
            "backends": backends(**extra),
        },
        templates={"MKT": {"params": []}},
    )


async def send(client, headers, phone, **extra):
    body = {"phone": phone, "template_id": "123456", "params": {"code": "1"}, **extra}
    response = await client.post("/api/sms/send", json=body, headers=headers)
    return response.status, await response.json()


async def provider_of(client, headers, phone, **extra) -> str:
    status, body = await send(client, headers, phone, **extra)
    assert status == 200, body
    return body["data"]["provider"]


async def batch(client, headers, phones, **extra):
    body = {"phones": phones, "template_id": "123456", "params": {"code": "1"}, **extra}
    response = await client.post("/api/sms/batch-send", json=body, headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


async def test_country_routes_hong_kong_and_macau_elsewhere_and_the_rest_to_the_default(make_client):
    client = await routed_client(make_client, [{"match": {"country": ["HK", "MO"]}, "to": "dear"}])
    _, headers = await add_account(client, "team", balance_milli=10_000)
    assert await provider_of(client, headers, HK) == "dear"
    assert await provider_of(client, headers, MO) == "dear"
    assert await provider_of(client, headers, CN) == "mid"
    carriers = client.app[RUNTIME].current.carriers
    assert carriers["dear"].calls == [[HK], [MO]]
    assert carriers["mid"].calls == [["+8613800138000"]]


async def test_prefix_routes_match_the_e164_start(make_client):
    client = await routed_client(make_client, [{"match": {"prefix": ["+86170", "+86171"]}, "to": "cheap"}])
    _, headers = await add_account(client, "team", balance_milli=10_000)
    assert await provider_of(client, headers, "17012345678") == "cheap"
    assert await provider_of(client, headers, "+8617112345678") == "cheap"
    assert await provider_of(client, headers, "17212345678") == "mid"


async def test_template_and_account_must_both_match(make_client):
    routes = [{"match": {"template": ["MKT"], "account": ["growth"]}, "to": "cheap"}]
    client = await routed_client(make_client, routes)
    _, growth = await add_account(client, "growth", balance_milli=10_000)
    _, other = await add_account(client, "other", balance_milli=10_000)
    assert await provider_of(client, growth, CN, template_id="MKT") == "cheap"
    assert await provider_of(client, growth, CN) == "mid"  # another template
    assert await provider_of(client, other, CN, template_id="MKT") == "mid"  # another account


async def test_routes_are_tried_in_order_and_the_first_match_wins(make_client):
    routes = [{"match": {"country": ["HK"]}, "to": "dear"}, {"match": {}, "to": "cheap"}]
    client = await routed_client(make_client, routes)
    _, headers = await add_account(client, "team", balance_milli=10_000)
    assert await provider_of(client, headers, HK) == "dear"
    assert await provider_of(client, headers, CN) == "cheap"  # the empty match takes the rest


async def test_a_split_follows_its_weights_within_five_percent_and_is_stable_per_number(make_client):
    client = await make_client(
        providers={
            "default": "a",
            "routes": [{"match": {}, "split": {"a": 70, "b": 30}}],
            "backends": {"a": {"plugin": "mock", "price": 0.01}, "b": {"plugin": "mock", "price": 0.01}},
        },
        ratelimit={"phone": []},
    )
    _, headers = await add_account(client, "bulk", balance_milli=1_000_000)
    phones = [f"139{n:08d}" for n in range(2000)]
    taken: dict[str, str] = {}
    for start in range(0, len(phones), 100):
        data = await batch(client, headers, phones[start : start + 100])
        taken.update(zip(phones[start : start + 100], (r["provider"] for r in data["results"]), strict=True))
    shares = Counter(taken.values())
    assert abs(shares["a"] / 2000 - 0.70) <= 0.05, shares
    assert abs(shares["b"] / 2000 - 0.30) <= 0.05, shares
    again = await batch(client, headers, phones[:100])  # a retry lands where the first try did
    assert [r["provider"] for r in again["results"]] == [taken[p] for p in phones[:100]]


async def test_cheapest_skips_a_backend_whose_circuit_is_open_and_returns_when_it_closes(make_client):
    circuit = {"circuit": {"failures": 1, "cooldown": 0.2}, "retries": 0}
    client = await routed_client(
        make_client, [{"match": {}, "strategy": "cheapest"}], cheap=circuit, mid=circuit, dear=circuit
    )
    _, headers = await add_account(client, "team", balance_milli=10_000)
    cheap = client.app[RUNTIME].current.carriers["cheap"]
    assert await provider_of(client, headers, CN) == "cheap"
    cheap.down = True
    status, _ = await send(client, headers, CN)  # no failover configured: this one fails
    assert status != 200
    assert await provider_of(client, headers, CN) == "mid"  # circuit open: left out
    assert len(cheap.calls) == 2
    cheap.down = False
    await asyncio.sleep(0.25)  # the cooldown passes: the next send is the trial call
    assert await provider_of(client, headers, CN) == "cheap"
    assert await provider_of(client, headers, CN) == "cheap"


async def test_cheapest_takes_only_backends_that_serve_the_numbers_country(make_client):
    client = await routed_client(
        make_client, [{"match": {}, "strategy": "cheapest"}], cheap={"countries": ["CN"]}
    )
    _, headers = await add_account(client, "team", balance_milli=10_000)
    assert await provider_of(client, headers, CN) == "cheap"
    assert await provider_of(client, headers, HK) == "mid"


async def test_a_mixed_batch_is_split_across_carriers_concurrently_and_each_charged_its_price(make_client):
    meeting = {"rendezvous": 2, "meet": "mixed-batch"}  # neither answers until both are called
    client = await routed_client(
        make_client,
        [{"match": {"country": ["HK", "MO"]}, "to": "dear"}],
        default="cheap",
        cheap=meeting,
        dear=meeting,
    )
    _, headers = await add_account(client, "team", balance_milli=10_000)
    phones = [CN, HK, "13900139000", MO]
    data = await batch(client, headers, phones)
    assert [r["provider"] for r in data["results"]] == ["cheap", "dear", "cheap", "dear"]
    assert data["success_count"] == 4, data
    carriers = client.app[RUNTIME].current.carriers
    assert carriers["cheap"].calls == [["+8613800138000", "+8613900139000"]]
    assert carriers["dear"].calls == [[HK, MO]]
    info = await (await client.get("/api/account/info", headers=headers)).json()
    assert info["data"]["balance"] == pytest.approx(10.0 - 2 * 0.01 - 2 * 0.03)
    records = await (await client.get("/api/sms/records", headers=headers)).json()
    by_id = {record["message_id"]: record for record in records["data"]["records"]}
    for result in data["results"]:
        record = by_id[result["message_id"]]
        assert record["provider"] == result["provider"]
        assert record["price"] == pytest.approx(PRICES[result["provider"]])


async def test_the_callers_provider_overrides_the_routes(make_client):
    client = await routed_client(make_client, [{"match": {}, "to": "dear"}])
    _, headers = await add_account(client, "team", balance_milli=10_000)
    assert await provider_of(client, headers, CN) == "dear"
    assert await provider_of(client, headers, CN, provider="cheap") == "cheap"


async def test_an_accounts_allowed_list_overrides_routes_and_the_caller(make_client):
    routes = [
        {"match": {"country": ["HK"]}, "to": "dear"},
        {"match": {"prefix": ["+86139"]}, "split": {"dear": 50, "mid": 50}},
        {"match": {}, "strategy": "cheapest"},
    ]
    client = await routed_client(make_client, routes)
    _, headers = await add_account(client, "narrow", balance_milli=10_000, providers=("mid",))
    assert await provider_of(client, headers, HK) == "mid"  # `to: dear` passed over, cheapest: mid
    assert {await provider_of(client, headers, f"139{n:08d}") for n in range(20)} == {"mid"}
    assert await provider_of(client, headers, CN) == "mid"  # cheapest among what it may use
    status, body = await send(client, headers, CN, provider="dear")
    assert (status, body["code"]) == (403, "PROVIDER_FORBIDDEN")


async def test_status_page_and_metrics_show_what_each_route_took(make_client):
    routes = [
        {"name": "hk", "match": {"country": ["HK"]}, "to": "dear"},
        {"name": "vip", "match": {"account": ["secret-team"]}, "to": "cheap"},
    ]
    client = await routed_client(make_client, routes)
    _, headers = await add_account(client, "team", balance_milli=10_000)
    await batch(client, headers, [HK, CN, "13900139000"])
    await send(client, headers, CN, provider="cheap")
    page = await (await client.get("/status")).text()
    assert 'data-route="hk"' in page and "国家/地区 HK" in page
    assert "1 个指定账户" in page and "secret-team" not in page  # the page names no account
    assert '<span data-provider="dear">dear 1</span>' in page
    assert '<span data-provider="mid">mid 2</span>' in page
    assert '<span data-provider="cheap">cheap 1</span>' in page
    metrics = await (await client.get("/metrics")).text()
    assert 'smsedge_route_decisions_total{provider="dear",route="hk"} 1.0' in metrics
    assert 'smsedge_route_decisions_total{provider="mid",route="default"} 2.0' in metrics
    assert 'smsedge_route_decisions_total{provider="cheap",route="requested"} 1.0' in metrics


async def test_a_failed_over_send_reaches_the_status_view_with_each_call_and_the_routings_choice(make_client):
    client = await routed_client(make_client, [], default="mid", failover=["cheap"], mid={"retries": 0})
    _, headers = await add_account(client, "team", balance_milli=10_000)
    client.app[RUNTIME].current.carriers["mid"].down = True
    assert await provider_of(client, headers, CN) == "cheap"
    status = client.app[STATUS]
    mid, cheap = status.carriers.summary("mid"), status.carriers.summary("cheap")
    assert (mid.calls, mid.success_rate, cheap.calls, cheap.success_rate) == (1, 0.0, 1, 1.0)
    assert sum(minute.carrier_calls for minute in status.timeline.minutes()) == 2
    assert status.routing.taken("default") == {"mid": 1}  # what the routing chose, not who took it


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ({"match": {}, "to": "nope"}, "providers.routes[0].to: unknown backend 'nope'"),
        (
            {"match": {}, "split": {"cheap": 50, "nope": 50}},
            "providers.routes[0].split.nope: unknown backend",
        ),
        (
            {"match": {}, "split": {"cheap": 60, "dear": 30}},
            "providers.routes[0].split: weights must sum to 100",
        ),
        (
            {"match": {"country": ["XX"]}, "to": "cheap"},
            "providers.routes[0].match.country[0]: unknown country code 'XX'",
        ),
        (
            {"match": {"prefix": ["86170"]}, "to": "cheap"},
            "providers.routes[0].match.prefix[0]: must be an E.164 prefix",
        ),
        ({"match": {}, "to": "cheap", "strategy": "cheapest"}, "providers.routes[0]: needs exactly one of"),
        ({"match": {}}, "providers.routes[0]: needs exactly one of"),
        ({"match": {}, "strategy": "random"}, "providers.routes[0].strategy: must be one of cheapest"),
        ({"match": {"planet": ["mars"]}, "to": "cheap"}, "providers.routes[0].match.planet: unknown key"),
    ],
)
def test_check_config_refuses_a_broken_route(config_document, route, error):
    config_document["providers"] = {"default": "cheap", "routes": [route], "backends": backends()}
    with pytest.raises(ConfigError) as refused:
        parse_config(config_document)
    assert str(refused.value).startswith(error), str(refused.value)


def test_a_backend_with_an_unknown_country_is_refused(config_document):
    config_document["providers"] = {"default": "cheap", "backends": backends(cheap={"countries": ["ZZ"]})}
    with pytest.raises(ConfigError, match=r"providers\.backends\.cheap\.countries\[0\]: unknown country"):
        parse_config(config_document)


def test_the_documented_routes_example_is_a_valid_config(config_document, monkeypatch):
    """docs/configuration.md's example is one a platform team can copy as it is."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = text.split("```yaml\nproviders:", 1)[1].split("```", 1)[0]
    for name in (
        "TENCENT_SECRET_ID",
        "TENCENT_SECRET_KEY",
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
    ):
        monkeypatch.setenv(name, f"example-{name.lower()}")
    providers = expand_references(yaml.safe_load("providers:" + example))[0]["providers"]
    config = parse_config({**config_document, "providers": providers})
    routes = config.providers.routes
    assert [route.name for route in routes] == [
        "payments-dedicated",
        "hk-macau",
        "marketing",
        "mainland-ramp",
    ]
    assert routes[3].split == (("tencent", 90), ("aliyun", 10))
    assert config.providers.backends["tencent"].countries == {"CN"}


def test_an_unnamed_route_is_known_by_its_place(config_document):
    config_document["providers"] = {
        "default": "cheap",
        "backends": backends(),
        "routes": [
            {"match": {}, "to": "dear"},
            {"name": "hk", "match": {"country": ["HK"]}, "to": "mid"},
            {"match": {}, "to": "cheap"},
        ],
    }
    assert [route.name for route in parse_config(config_document).providers.routes] == ["#1", "hk", "#3"]

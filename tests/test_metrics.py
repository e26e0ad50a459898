"""GET /metrics after real traffic: the contract's names and labels, true counts, nothing unbounded."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config.model import BucketConfig
from gateway.keys import METRICS
from gateway.metrics import Metrics
from gateway.middlewares.request_context import UNMATCHED_ROUTE
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, ROOT, SEND_BODY, add_account

SEND = "/api/sms/send"
BATCH = "/api/sms/batch-send"
TENANT = "acme-tenant-zq"
BURSTY = "burst-one-tenant"
BACKENDS = {"mock": {}, "refuser": {"plugin": "mock", "price": 0.05, "fail_rate": 1.0}}
SENT = ["13912345601", "13912345602", "+14155550123"]  # one send each: 200
THROTTLED, FRESH = "13912345601", "008613712345678"  # batch: the first is in its 60 s window
REFUSED = ["13512345671", "+8613512345672"]  # batch to the refusing backend: 200, all failed
USED = [*SENT, FRESH, *REFUSED, "13312345673", "1391234567", "13912345678"]
CONTRACT = {
    "smsedge_http_requests_total": ("counter", {"method", "route", "status"}),
    "smsedge_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "smsedge_sms_messages_total": ("counter", {"provider", "status"}),
    "smsedge_provider_request_duration_seconds": ("histogram", {"provider", "outcome"}),
    "smsedge_ratelimit_rejections_total": ("counter", {"scope"}),
    "smsedge_auth_failures_total": ("counter", set()),
    "smsedge_provider_circuit_open": ("gauge", {"provider"}),
    "smsedge_callbacks_total": ("counter", {"outcome"}),
    "smsedge_callback_queue_depth": ("gauge", set()),
    "smsedge_callback_oldest_age_seconds": ("gauge", set()),
    "smsedge_segment_mismatch_total": ("counter", {"provider"}),
    "smsedge_status_pull_records_total": ("counter", {"provider", "result"}),
    "smsedge_quota_refusals_total": ("counter", {"period"}),
}
CALLBACK_OUTCOMES = {"delivered", "retried", "dead", "refused"}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}


def family(families: dict, name: str):
    # The parser names a counter's family without its ``_total`` suffix.
    return families.get(name) or families[name.removesuffix("_total")]


def value(families: dict, name: str, sample: str | None = None, **labels: str) -> float:
    wanted = sample or name
    return sum(
        s.value
        for s in family(families, name).samples
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def scrape(client, path: str = "/metrics") -> tuple[str, dict]:
    response = await client.get(path)
    assert response.status == 200
    # The text format and the content type prometheus-client pairs with it (no Accept header sent).
    assert response.headers["Content-Type"] == choose_encoder("")[1]
    text = await response.text()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


@pytest.fixture
async def traffic(make_client):
    """A gateway that has seen every kind of request once or more; its /metrics text, parsed."""
    client = await make_client(
        providers={"backends": BACKENDS}, ratelimit={"phone": [{"limit": 1, "seconds": 60}]}
    )
    _, tenant = await add_account(client, TENANT, balance_milli=100_000)
    _, bursty = await add_account(
        client, BURSTY, balance_milli=100_000, ratelimit=BucketConfig(rate=0.001, burst=1)
    )
    expect = {}

    async def call(method, path, status, headers=None, **kwargs):
        response = await client.request(method, path, headers=headers or {}, **kwargs)
        assert response.status == status, (method, path, await response.text())
        return await response.json()

    for phone in SENT:
        await call("POST", SEND, 200, tenant, json={**SEND_BODY, "phone": phone})
    body = await call("POST", BATCH, 200, tenant, json={"phones": [THROTTLED, FRESH], "template_id": "1"})
    expect["partial"] = (body["data"]["success_count"], body["data"]["failed_count"])
    body = await call(
        "POST", BATCH, 200, tenant, json={"phones": REFUSED, "template_id": "1", "provider": "refuser"}
    )
    expect["refused"] = body["data"]["failed_count"]
    await call("POST", SEND, 200, bursty, json={**SEND_BODY, "phone": "13312345673"})
    await call("POST", SEND, 429, bursty, json={**SEND_BODY, "phone": "13312345673"})
    await call("POST", SEND, 400, tenant, json={**SEND_BODY, "phone": "1391234567x"})
    await call("POST", BATCH, 400, tenant, json={"phones": ["1391234567x"], "template_id": "1"})
    await call("POST", SEND, 401, {"X-API-Key": DEMO_KEY, "X-API-Secret": "wrong"}, json=SEND_BODY)
    await call("POST", SEND, 401, None, json=SEND_BODY)
    await call("GET", "/api/account/info", 401, {"X-API-Key": "sk_nobody", "X-API-Secret": "x"})
    await call("GET", "/api/account/info", 200, DEMO_HEADERS)
    await call("GET", "/api/sms/records?page=13912345678", 400, DEMO_HEADERS)
    await call("GET", "/api/sms/records", 200, tenant)
    for path in ("/api/x/13912345678", "/wp-admin", "/api/sms/send/13912345678"):
        await call("GET", path, 404, DEMO_HEADERS)
    await call("PROPFIND", "/wp-admin", 404)
    await call("PROPFIND", SEND, 405, DEMO_HEADERS)
    await call("GET", "/healthz", 200)
    text, families = await scrape(client)
    return client, text, families, expect, tenant


async def test_every_contract_name_is_there_with_exactly_its_labels(traffic):
    _, _, families, _, _ = traffic
    for name, (kind, labels) in CONTRACT.items():
        found = family(families, name)
        assert found.type == kind, name
        assert found.samples, name
        for sample in found.samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample)


async def test_histograms_have_gateway_buckets_from_milliseconds_to_seconds(traffic):
    _, _, families, _, _ = traffic
    for name in ("smsedge_http_request_duration_seconds", "smsedge_provider_request_duration_seconds"):
        bounds = {
            float(s.labels["le"])
            for s in family(families, name).samples
            if s.name == f"{name}_bucket" and s.labels["le"] != "+Inf"
        }
        assert min(bounds) <= 0.005, name
        assert max(bounds) >= 5.0, name
        assert len(bounds) >= 8, name


async def test_http_counts_match_the_traffic(traffic):
    _, _, families, _, _ = traffic
    requests = "smsedge_http_requests_total"
    assert value(families, requests, method="POST", route=SEND, status="200") == len(SENT) + 1
    assert value(families, requests, method="POST", route=BATCH, status="200") == 2
    assert value(families, requests, method="POST", route=SEND, status="400") == 1
    assert value(families, requests, method="POST", route=BATCH, status="400") == 1
    assert value(families, requests, method="POST", route=SEND, status="401") == 2
    assert value(families, requests, method="POST", route=SEND, status="429") == 1
    assert value(families, requests, method="GET", route="/api/account/info", status="401") == 1
    assert value(families, requests, method="GET", route="/api/sms/records", status="400") == 1
    assert value(families, requests, method="GET", route=UNMATCHED_ROUTE, status="404") == 3
    assert value(families, requests, method="OTHER", status="404") == 1
    assert value(families, requests, method="OTHER", status="405") == 1
    assert value(families, requests, method="GET", route="/healthz", status="200") == 1
    duration = "smsedge_http_request_duration_seconds"
    sends = value(families, requests, method="POST", route=SEND)
    assert value(families, duration, f"{duration}_count", method="POST", route=SEND) == sends
    assert value(families, duration, f"{duration}_bucket", method="POST", route=SEND, le="+Inf") == sends


async def test_messages_rate_limits_auth_failures_and_carrier_calls_are_counted(traffic):
    _, _, families, expect, _ = traffic
    assert expect == {"partial": (1, 1), "refused": len(REFUSED)}
    messages = "smsedge_sms_messages_total"
    # One per number: 3 sends, the batch's fresh number and the bursty account's first send.
    assert value(families, messages, provider="mock", status="success") == len(SENT) + 2
    assert value(families, messages, provider="mock", status="failed") == 0
    assert value(families, messages, provider="refuser", status="failed") == len(REFUSED)
    assert value(families, messages, provider="refuser", status="success") == 0
    rejections = "smsedge_ratelimit_rejections_total"
    assert value(families, rejections, scope="phone") == 1
    assert value(families, rejections, scope="account") == 1
    assert value(families, "smsedge_auth_failures_total") == 3
    calls = "smsedge_provider_request_duration_seconds"
    assert value(families, calls, f"{calls}_count", provider="mock") == len(SENT) + 2
    assert value(families, calls, f"{calls}_count", provider="refuser") == 1  # one batch call
    outcomes = {s.labels["outcome"] for s in family(families, calls).samples}
    # "refused": the carrier answered but took none of the call's numbers.
    assert outcomes <= {"success", "refused", "caller", "rate_limited", "retryable", "permanent", "timeout"}
    circuit = "smsedge_provider_circuit_open"
    assert {s.labels["provider"]: s.value for s in family(families, circuit).samples} == {
        "mock": 0.0,
        "refuser": 0.0,
    }


def callbacks(families: dict) -> dict[str, float]:
    return {s.labels["outcome"]: s.value for s in family(families, "smsedge_callbacks_total").samples}


async def test_callback_outcomes_and_queue_show_zero_before_any_callback(client):
    _, families = await scrape(client)
    assert callbacks(families) == dict.fromkeys(CALLBACK_OUTCOMES, 0.0)
    assert value(families, "smsedge_callback_queue_depth") == 0
    assert value(families, "smsedge_callback_oldest_age_seconds") == 0


async def test_callback_outcomes_reported_by_the_deliverer_show(client):
    metrics = client.app[METRICS]
    for outcome in ("delivered", "delivered", "delivered", "retried", "retried", "dead", "refused"):
        metrics.callback_outcome(outcome)
    _, families = await scrape(client)
    assert callbacks(families) == {"delivered": 3.0, "retried": 2.0, "dead": 1.0, "refused": 1.0}


def test_the_callback_backlog_shows_the_latest_reading():
    # A Metrics of its own: the app's deliverer reads its (empty) outbox every second and would
    # overwrite a made-up reading (tests/test_callback_delivery.py shows a real one).
    metrics = Metrics(["mock"])

    def shown() -> dict:
        text = generate_latest(metrics.exposition).decode()
        return {f.name: f for f in text_string_to_metric_families(text)}

    metrics.callback_backlog(7, 912.5)
    assert value(shown(), "smsedge_callback_queue_depth") == 7
    assert value(shown(), "smsedge_callback_oldest_age_seconds") == 912.5
    metrics.callback_backlog(0, 0.0)  # the queue drained: gauges, not high-water marks
    assert value(shown(), "smsedge_callback_queue_depth") == 0
    assert value(shown(), "smsedge_callback_oldest_age_seconds") == 0


def test_the_api_docs_name_every_contract_metric_with_its_labels():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## Metrics\n")[1].split("\n## ")[0]
    documented = {
        found[1]: set((found[2] or "").split(",")) - {""}
        for found in re.finditer(r"`(smsedge_\w+)(?:\{([\w,]+)\})?`", section)
    }
    assert {name: labels for name, (_, labels) in CONTRACT.items()} == documented


def route_templates(app: web.Application) -> set[str]:
    """Every route template ``app`` serves, those of its sub-apps (the API at /api) included."""
    templates = set()
    for resource in app.router.resources():
        subapp = resource.get_info().get("app")
        templates |= route_templates(subapp) if subapp else {resource.canonical}
    return templates


async def test_labels_are_bounded_route_templates_and_methods(traffic):
    client, _, families, _, _ = traffic
    templates = route_templates(client.app)
    assert SEND in templates  # the API's routes, by their full template
    routes, methods, statuses = set(), set(), set()
    for name in ("smsedge_http_requests_total", "smsedge_http_request_duration_seconds"):
        for sample in family(families, name).samples:
            routes.add(sample.labels["route"])
            methods.add(sample.labels["method"])
            statuses.add(sample.labels.get("status", "200"))
    assert routes <= templates | {UNMATCHED_ROUTE}
    assert UNMATCHED_ROUTE in routes
    assert methods <= METHODS
    assert "OTHER" in methods and "PROPFIND" not in methods
    assert all(status.isdigit() and len(status) == 3 for status in statuses)
    providers = {s.labels["provider"] for s in family(families, "smsedge_sms_messages_total").samples}
    assert providers <= set(BACKENDS)
    scopes = {s.labels["scope"] for s in family(families, "smsedge_ratelimit_rejections_total").samples}
    assert scopes == {"account", "phone"}


async def test_the_exposition_holds_no_number_key_secret_account_or_raw_path(traffic):
    _, text, _, _, tenant = traffic
    for phone in USED:
        digits = "".join(ch for ch in phone if ch.isdigit())
        assert digits[-10:] not in text, phone
    for secret in (DEMO_KEY, DEMO_SECRET, tenant["X-API-Key"], tenant["X-API-Secret"], "sk_nobody"):
        assert secret not in text
    for name in (TENANT, BURSTY, "demo"):
        assert name not in text
    for raw in ("/wp-admin", "/api/x/", "PROPFIND", "/api/sms/send/"):
        assert raw not in text


async def test_metrics_can_be_switched_off(make_client):
    client = await make_client(metrics={"enabled": False})
    response = await client.get("/metrics")
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"


async def test_metrics_path_can_be_moved(make_client):
    client = await make_client(metrics={"path": "/internal/prometheus"})
    assert (await client.get("/metrics")).status == 404
    await client.get("/healthz")
    _, families = await scrape(client, "/internal/prometheus")
    requests = "smsedge_http_requests_total"
    assert value(families, requests, method="GET", route="/healthz", status="200") == 1
    assert value(families, requests, route=UNMATCHED_ROUTE, status="404") == 1

"""Fleet-wide at once: an admin change made through one gateway process is enforced by another.

Two real gateway processes share a store. The account is cached by the second one first (its
cache trusts an entry for ``ACCOUNT_CACHE_TTL``), then the first rotates its secret or disables it:
on Redis (each mode) the second refuses the old secret / the send at once, with no wait, because
every process follows the store's stream of changed accounts; on SQLite within its poll (0.1 s).
The CLI's changes are audited as ``cli``, and reach a running gateway the same way.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
import yaml

from gateway.store.cache import ACCOUNT_CACHE_TTL
from tests.conftest import REDIS_MODES, SHARED_SECRET, default_document, redis_section, without_limits
from tests.gateway_process import GatewayProcess, run_py

TOKEN = "fleet-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SEND = {"phone": "13800138000", "template_id": "123456"}


def fleet_document(tmp_path, store: str, redis: dict | None = None) -> dict:
    document = without_limits(default_document())
    document["server"]["secret_key"] = SHARED_SECRET
    document["store"] = {"backend": store, "path": str(tmp_path / "fleet.db")}
    if redis:
        document["redis"] = redis
    document["admin"] = {"tokens": [{"name": "ops-fleet", "token": TOKEN}]}
    document["logging"]["level"] = "WARNING"
    return document


@pytest.fixture
def pair(tmp_path):
    started: list[GatewayProcess] = []

    def launch(document: dict) -> tuple[GatewayProcess, GatewayProcess]:
        started.extend(GatewayProcess(document, tmp_path, name=name) for name in ("a", "b"))
        return started[0], started[1]

    yield launch
    for gateway in started:
        gateway.stop()


def admin(gateway: GatewayProcess, method: str, path: str, **kwargs) -> dict:
    response = requests.request(method, f"{gateway.url}/admin/api{path}", headers=ADMIN, timeout=10, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()["data"]


def info(gateway: GatewayProcess, key: str, secret: str) -> requests.Response:
    return requests.get(
        f"{gateway.url}/api/account/info", timeout=10, headers={"X-API-Key": key, "X-API-Secret": secret}
    )


def check_fleet_wide(first: GatewayProcess, second: GatewayProcess, bound: float) -> None:
    created = admin(first, "POST", "/accounts", json={"name": "roaming", "balance": 5})
    key, old = created["api_key"], created["api_secret"]
    cached_at = time.monotonic()
    assert info(second, key, old).status_code == 200  # now in the second one's cache
    new = admin(first, "POST", f"/accounts/{key}/rotate-secret")["api_secret"]
    refused = _first_refusal(lambda: info(second, key, old), bound)
    assert refused.status_code == 401
    assert time.monotonic() - cached_at < ACCOUNT_CACHE_TTL, "too slow to tell from the cache's own bound"
    assert info(second, key, new).status_code == 200
    headers = {"X-API-Key": key, "X-API-Secret": new}
    cached_at = time.monotonic()
    assert send(second, headers, SEND).status_code == 200
    admin(first, "PATCH", f"/accounts/{key}", json={"disabled": True})
    disabled = _first_refusal(lambda: send(second, headers, {**SEND, "phone": "13900139000"}), bound)
    assert (disabled.status_code, disabled.json()["code"]) == (403, "ACCOUNT_DISABLED")
    assert time.monotonic() - cached_at < ACCOUNT_CACHE_TTL
    logs = first.log.read_text() + second.log.read_text()
    for hidden in (old, new, TOKEN):
        assert hidden not in logs


def send(gateway: GatewayProcess, headers: dict[str, str], body: dict) -> requests.Response:
    return requests.post(f"{gateway.url}/api/sms/send", json=body, headers=headers, timeout=10)


def _first_refusal(call, bound: float) -> requests.Response:
    """The first answer that is not a 200: the very first one when ``bound`` is 0."""
    deadline = time.monotonic() + bound
    while True:
        response = call()
        if response.status_code != 200 or time.monotonic() >= deadline:
            return response
        time.sleep(0.01)


@pytest.mark.parametrize("mode", REDIS_MODES)
def test_rotate_and_disable_take_effect_at_once_on_another_process_on_redis(tmp_path, request, pair, mode):
    first, second = pair(fleet_document(tmp_path, "redis", redis_section(request, mode)))
    check_fleet_wide(first, second, bound=0)


def test_rotate_and_disable_take_effect_within_a_poll_on_another_process_on_sqlite(tmp_path, pair):
    first, second = pair(fleet_document(tmp_path, "sqlite"))
    check_fleet_wide(first, second, bound=0.3)


def cli(config, *args: str) -> dict:
    result = run_py("accounts", *args, "--config", config)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_cli_changes_are_audited_as_cli_and_reach_a_running_gateway_at_once(tmp_path, request, pair, store):
    redis = redis_section(request, "standalone") if store == "redis" else None
    document = fleet_document(tmp_path, store, redis)
    gateway, _ = pair(document)
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    created = cli(config, "create", "--name", "by-cli", "--balance", "1")
    key, secret = created["api_key"], created["api_secret"]
    assert info(gateway, key, secret).status_code == 200
    cli(config, "topup", "--key", key, "--amount", "2", "--reason", "manual credit")
    cli(config, "set", "--key", key, "--disabled", "true")
    refused = _first_refusal(lambda: info(gateway, key, secret), 0 if store == "redis" else 0.3)
    assert (refused.status_code, refused.json()["code"]) == (403, "ACCOUNT_DISABLED")
    rotated = cli(config, "rotate-secret", "--key", key)
    entries = admin(gateway, "GET", "/audit")["entries"]
    assert {(e["actor"], e["action"]) for e in entries[4:]} == {("config", "create")}  # listed ones
    entries = entries[:4]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("cli", "rotate-secret"),
        ("cli", "disable"),
        ("cli", "topup"),
        ("cli", "create"),
    ]
    assert entries[2]["reason"] == "manual credit"
    assert (entries[2]["before"], entries[2]["after"]) == ({"balance": 1.0}, {"balance": 3.0})
    assert {e["account"]["api_key"] for e in entries} == {key}
    text = json.dumps(entries) + gateway.log.read_text()
    for hidden in (secret, rotated["api_secret"], TOKEN, "hmac-sha256"):
        assert hidden not in text

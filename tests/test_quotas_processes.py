"""Quotas as operators and fleets meet them: ``run.py accounts set --daily-limit/--monthly-limit``,
and a daily limit held exactly by two gateway processes of two workers each on one Redis.

Apart from ``test_quotas`` because these start processes (marked ``subprocess`` like every test
that does, so ``make test-fast`` leaves them out).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import orjson
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO_HEADERS, SEND_BODY
from tests.test_cli import Cli, auth, within_cache_bound
from tests.test_fleet import fleet_document, start  # noqa: F401 (a fixture)


def quota_set(cli: Cli, key: str, *args: str) -> dict:
    return cli.json("set", "--key", key, *args)


def test_accounts_set_changes_the_limits_checked_and_audited(tmp_path):
    cli = Cli(tmp_path)
    key = cli.json("create", "--name", "capped")["api_key"]
    changed = quota_set(cli, key, "--daily-limit", "100", "--monthly-limit", "2000")
    assert (changed["daily_limit"], changed["monthly_limit"]) == (100, 2000)
    changed = quota_set(cli, key, "--daily-limit", "none")  # the monthly limit stays
    assert (changed["daily_limit"], changed["monthly_limit"]) == (None, 2000)
    for refused in ("0", "-1", "1.5", "ten", "1000000001"):
        result = cli("set", "--key", key, "--monthly-limit", refused)
        assert result.returncode == 2 and result.stdout == "", refused
        assert "--monthly-limit" in result.stderr and "Traceback" not in result.stderr
    [listed] = cli.listing()
    assert (listed["daily_limit"], listed["monthly_limit"]) == (None, 2000)
    with sqlite3.connect(cli.db) as db:
        entries = db.execute("SELECT action, before, after FROM audit_log WHERE actor = 'cli' ORDER BY id")
        updates = [(action, orjson.loads(before), orjson.loads(after)) for action, before, after in entries]
    assert updates[1:] == [
        ("update", {"daily_limit": None, "monthly_limit": None}, {"daily_limit": 100, "monthly_limit": 2000}),
        ("update", {"daily_limit": 100}, {"daily_limit": None}),
    ]


async def test_a_limit_the_cli_sets_holds_a_running_gateway(tmp_path, make_client):
    cli = Cli(tmp_path)
    created = cli.json("create", "--name", "shop", "--balance", "5")
    headers = auth(created)
    client = await make_client(store={"path": str(cli.db)}, ratelimit={"phone": []})
    assert (await client.post("/api/sms/send", json=SEND_BODY, headers=headers)).status == 200
    await asyncio.to_thread(quota_set, cli, created["api_key"], "--daily-limit", "1")
    await within_cache_bound(client, headers, lambda _, body: body["data"]["daily_limit"] == 1)
    other = {**SEND_BODY, "phone": "13900139000"}
    refused = await client.post("/api/sms/send", json=other, headers=headers)
    assert (refused.status, (await refused.json())["code"]) == (429, "QUOTA_EXCEEDED")


def midday_zone() -> str:
    """A zone where it is about noon now: the day cannot turn while the fleet test runs."""
    offset = 12 - datetime.now(UTC).hour  # hours ahead of UTC; Etc/GMT names count the other way
    return f"Etc/GMT{-offset:+d}"


def test_a_daily_limit_of_10_admits_exactly_10_of_300_across_two_gateways_of_two_workers(
    tmp_path,
    redis_server,
    start,  # noqa: F811 (the fixture)
):
    document = fleet_document(tmp_path, redis_server.url, "redis")
    document["server"].update(workers=2, timezone=midday_zone())
    document["accounts"][0]["daily_limit"] = 10  # applied when the config creates the account
    first, second = start(document, "a"), start(document, "b")

    def send(n: int) -> requests.Response:
        gateway = first if n % 2 else second
        body = {**SEND_BODY, "phone": f"135{n:08d}"}
        # A new connection each time, so the kernel may hand it to either worker.
        return requests.post(
            f"{gateway.url}/api/sms/send",
            json=body,
            headers={**DEMO_HEADERS, "Connection": "close"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=48) as pool:
        responses = list(pool.map(send, range(300)))
    statuses = [response.status_code for response in responses]
    assert (statuses.count(200), statuses.count(429)) == (10, 290)
    refusals = [response for response in responses if response.status_code == 429]
    assert {response.json()["code"] for response in refusals} == {"QUOTA_EXCEEDED"}
    assert all(3600 <= int(response.headers["Retry-After"]) <= 86400 for response in refusals)
    # Nothing but the 10 was charged, recorded or handed to the carrier.
    records = requests.get(f"{first.url}/api/sms/records", headers=DEMO_HEADERS, timeout=10).json()
    assert records["data"]["total"] == 10
    info = requests.get(f"{second.url}/api/account/info", headers=DEMO_HEADERS, timeout=10).json()["data"]
    assert (info["balance"], info["total_sent"], info["daily_limit"], info["monthly_sent"]) == (
        99.5,
        10,
        10,
        10,
    )
    calls = refused = 0.0
    for gateway in (first, second):
        text = requests.get(f"{gateway.url}/metrics", headers={"Connection": "close"}, timeout=10).text
        calls += metric(text, "smsedge_provider_request_duration_seconds_count")
        refused += metric(text, "smsedge_quota_refusals_total", period="daily")
    assert (calls, refused) == (10, 290)


def metric(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )

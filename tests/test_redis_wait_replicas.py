"""``redis.wait_replicas``: a store write is answered only once that many replicas have it (WAIT).

A primary and one replica of it on loopback; the replica SIGSTOPped stands for one that has fallen
behind or been cut off. With ``wait_replicas: 1`` a send, an idempotent send and an admin top-up
are then 503 within ``redis.timeout`` (and ``/readyz`` says the store is unavailable), and undone on
the primary (the send's reserve refunded before any carrier call, the top-up reversed, the
idempotency claim released), so a retry once the replica is back is a first attempt, not a double.
A 200 is on the replica the moment it is answered. Off (the default), the lagging replica holds
nothing up. On a Cluster each master waits for its own replica.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.keys import STORE
from tests.conftest import DEMO_HEADERS, DEMO_KEY, SEND_BODY, SHARED_SECRET, add_account
from tests.redis_server import RedisServer
from tests.redis_topologies import ClusterServers, ask, wait_for

TIMEOUT = 1.0
TOKEN = "replicas-admin-token-0123456789ab"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


class Replicated:
    """A primary and its replica, each a real redis-server of this test's own."""

    def __init__(self, directory: Path) -> None:
        for name in ("primary", "replica"):
            (directory / name).mkdir()
        self.primary = RedisServer(directory / "primary").start()
        self.replica = RedisServer(
            directory / "replica", "--replicaof", "127.0.0.1", str(self.primary.port)
        ).start()
        wait_for(
            lambda: "master_link_status:up" in ask(self.replica.port, "INFO", "replication"),
            "the replica to sync",
        )

    def stall(self) -> None:
        assert self.replica.process is not None
        self.replica.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.replica.process is not None
        self.replica.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.replica.stop()
        self.primary.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Replicated]:
    started = Replicated(tmp_path)
    yield started
    started.stop()


def gateway(servers: Replicated, wait_replicas: int) -> dict[str, object]:
    return {
        "store": {"backend": "redis"},
        "redis": {"url": servers.primary.url, "timeout": TIMEOUT, "wait_replicas": wait_replicas},
        "server": {"secret_key": SHARED_SECRET},
        "admin": {"tokens": [{"name": "ops-replicas", "token": TOKEN}]},
    }


async def timed(call) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = await call
    return response.status, await response.json(), time.monotonic() - started


async def carrier_calls(client) -> int:
    text = await (await client.get("/metrics")).text()
    return int(
        sum(
            float(value)
            for value in re.findall(r"^smsedge_sms_messages_total\{[^}]*\} (\S+)$", text, flags=re.MULTILINE)
        )
    )


async def balance(client) -> float:
    info = await (await client.get("/api/account/info", headers=DEMO_HEADERS)).json()
    return info["data"]["balance"]


def stored_balances(server: RedisServer) -> list[bytes]:
    """Every account's balance as ``server`` holds it (read from it directly)."""
    with redis.Redis(port=server.port) as direct:
        return sorted(
            direct.hget(key, "balance_milli")
            for key in direct.scan_iter("*:account:*")
            if direct.type(key) == b"hash"
        )


async def test_writes_a_replica_does_not_confirm_are_503_and_undone(make_client, servers):
    client = await make_client(**gateway(servers, 1))
    warm = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
    assert warm.status == 200, await warm.text()
    servers.stall()
    try:
        refused = {
            "send": await timed(
                client.post("/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "phone": "13900000001"})
            ),
            "idempotent send": await timed(
                client.post(
                    "/api/sms/send",
                    json={**SEND_BODY, "phone": "13900000002"},
                    headers={**DEMO_HEADERS, "Idempotency-Key": "stalled-replica-1"},
                )
            ),
            "top-up": await timed(
                client.post(
                    f"/admin/api/accounts/{DEMO_KEY}/topup",
                    headers=ADMIN,
                    json={"amount": 5, "reason": "replica test"},
                )
            ),
        }
        readiness = await timed(client.get("/readyz"))  # every send would be 503: take no traffic
    finally:
        servers.resume()
    for name, (status, body, seconds) in refused.items():
        assert status == 503 and body["code"] == "UNAVAILABLE", (name, status, body)
        assert seconds < TIMEOUT + 0.5, (name, seconds)
    assert readiness[0] == 503 and readiness[1]["failed"] == ["store"], readiness
    assert readiness[2] < TIMEOUT + 0.5
    # Nothing was sent, charged or credited for a 503.
    assert await carrier_calls(client) == 1
    assert await balance(client) == 99.95

    # Once the replica is back, the retries are first attempts, and each 200 is on the replica.
    again = await client.post(
        "/api/sms/send",
        json={**SEND_BODY, "phone": "13900000002"},
        headers={**DEMO_HEADERS, "Idempotency-Key": "stalled-replica-1"},
    )
    assert again.status == 200, await again.text()
    topped = await client.post(
        f"/admin/api/accounts/{DEMO_KEY}/topup", headers=ADMIN, json={"amount": 5, "reason": "replica test"}
    )
    assert topped.status == 200, await topped.text()
    assert stored_balances(servers.replica) == stored_balances(servers.primary)
    assert await carrier_calls(client) == 2
    assert await balance(client) == round(100 - 0.05 * 2 + 5, 2)


async def test_off_by_default_a_lagging_replica_holds_no_write_up(make_client, servers):
    client = await make_client(**gateway(servers, 0))
    servers.stall()
    try:
        status, body, seconds = await timed(
            client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
        )
    finally:
        servers.resume()
    assert status == 200, body
    assert seconds < TIMEOUT / 2


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterServers]:
    """Three masters with a replica each, of this test's own: one replica is stopped."""
    servers = ClusterServers(tmp_path / "cluster", replicas=1).start()
    yield servers
    for node in servers.nodes:
        if node.process is not None:
            node.process.send_signal(signal.SIGCONT)
    servers.stop()


def replica_of(cluster: ClusterServers, master: RedisServer) -> RedisServer:
    return next(
        node
        for node in cluster.nodes
        if cluster.role(node) == "slave"
        and f"master_port:{master.port}" in ask(node.port, "INFO", "replication")
    )


async def test_on_a_cluster_each_master_waits_for_its_own_replicas(make_client, cluster):
    """The WAIT goes to the master that took the write: a send of an account whose master's
    replica is stopped is 503, while an account on another master sends."""
    client = await make_client(
        store={"backend": "redis"},
        server={"secret_key": SHARED_SECRET},
        redis={
            "mode": "cluster",
            "url": cluster.url,
            "key_prefix": "wait:",
            "timeout": 2,
            "wait_replicas": 1,
        },
    )
    store = client.app[STORE]
    demo = await store.account_by_key(DEMO_KEY)
    home = cluster.owner(store.keys.account(demo.id))
    elsewhere = None
    for n in range(12):  # accounts spread over the masters by their ids' slots
        account, headers = await add_account(client, f"elsewhere-{n}", balance_milli=10_000)
        if cluster.owner(store.keys.account(account.id)) is not home:
            elsewhere = headers
            break
    assert elsewhere is not None
    stalled = replica_of(cluster, home)
    assert stalled.process is not None
    stalled.process.send_signal(signal.SIGSTOP)
    try:
        refused = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
        other = await client.post("/api/sms/send", json=SEND_BODY, headers=elsewhere)
    finally:
        stalled.process.send_signal(signal.SIGCONT)
    assert refused.status == 503, await refused.text()
    assert other.status == 200, await other.text()
    again = await client.post(
        "/api/sms/send", json={**SEND_BODY, "phone": "13900000003"}, headers=DEMO_HEADERS
    )
    assert again.status == 200, await again.text()

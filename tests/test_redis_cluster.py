"""A fleet on a real 3-master Redis Cluster: two gateway processes behave as one, the data spreads
over the masters, and a slot moved under traffic (ASK, then MOVED) is followed without an error.

The store contract and the limiter suite run on the cluster too (``test_store_contract``,
``test_ratelimit_backends``); this file is what only whole gateways show.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import DEMO_HEADERS, default_document, without_limits
from tests.gateway_process import GatewayProcess
from tests.redis_topologies import ClusterServers, ask
from tests.traffic import Traffic

PREFIX = "fleet:"
RECOVERY_SECONDS = 15


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterServers]:
    """A cluster of this test's own: its slots are moved, its keys counted."""
    servers = ClusterServers(tmp_path / "cluster").start()
    yield servers
    servers.stop()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def launch(document: dict, name: str) -> GatewayProcess:
        started.append(GatewayProcess(document, tmp_path, name=name))
        return started[-1]

    yield launch
    for gateway in started:
        gateway.stop()


def cluster_document(tmp_path: Path, cluster: ClusterServers) -> dict:
    """Store and limiter on the cluster, as docs/deployment.md's cluster example configures them."""
    document = without_limits(default_document())
    document["server"]["secret_key"] = "cluster-test-secret-key-00000000"
    document["store"] = {"backend": "redis", "path": str(tmp_path / "unused.db")}
    document["redis"] = {"mode": "cluster", "url": cluster.url, "key_prefix": PREFIX, "timeout": 1}
    document["ratelimit"]["backend"] = "redis"
    return document


def send(gateway: GatewayProcess, phone: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/api/sms/send",
        headers=DEMO_HEADERS,
        json={"phone": phone, "template_id": "123456"},
        timeout=30,
    )


def spread(first: GatewayProcess, second: GatewayProcess, phones: list[str]) -> list[int]:
    """Every phone sent at once, alternately through the two gateways: the status codes."""
    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(
            pool.map(lambda pair: send((first, second)[pair[0] % 2], pair[1]).status_code, enumerate(phones))
        )


def test_two_gateways_on_a_cluster_never_overdraw_one_balance(tmp_path, cluster, start):
    document = cluster_document(tmp_path, cluster)
    document["accounts"][0]["balance"] = 1.0  # exactly 20 sends at the mock's 0.05
    first, second = start(document, "a"), start(document, "b")
    statuses = spread(first, second, [f"137{n:08d}" for n in range(40)])
    assert statuses.count(200) == 20 and statuses.count(403) == 20, statuses
    info = requests.get(f"{second.url}/api/account/info", headers=DEMO_HEADERS, timeout=10).json()
    assert info["data"]["balance"] == 0.0
    # The account, its records and the lookups are spread over the masters, not kept on one.
    holding = [ask(node.port, "--scan", "--pattern", f"{PREFIX}*") for node in cluster.nodes]
    assert sum(1 for keys in holding if keys) >= 2, holding


def test_two_gateways_on_a_cluster_share_one_bucket_and_one_number_window(tmp_path, cluster, start):
    document = cluster_document(tmp_path, cluster)
    document["accounts"][0]["ratelimit"] = {"rate": 0.001, "burst": 12}
    first, second = start(document, "a"), start(document, "b")
    statuses = spread(first, second, [f"139{n:08d}" for n in range(40)])
    assert statuses.count(200) == 12 and statuses.count(429) == 28, statuses

    document = cluster_document(tmp_path, cluster)
    document["redis"]["key_prefix"] = "window:"
    document["ratelimit"]["phone"] = [{"limit": 3, "seconds": 3600}]
    first, second = start(document, "c"), start(document, "d")
    statuses = spread(first, second, ["13600136000"] * 10)
    assert statuses.count(200) == 3 and statuses.count(429) == 7, statuses


def node_ids(cluster: ClusterServers) -> list[str]:
    return [ask(node.port, "CLUSTER", "MYID") for node in cluster.nodes]


def test_a_slot_moved_under_traffic_is_followed_through_ask_and_moved(tmp_path, cluster, start):
    gateway = start(cluster_document(tmp_path, cluster), "a")
    assert send(gateway, "13500135000").status_code == 200
    account_key = f"{PREFIX}{{a:1}}:account"
    slot = ask(cluster.nodes[0].port, "CLUSTER", "KEYSLOT", account_key)
    ids = node_ids(cluster)
    owner = cluster.nodes.index(cluster.owner(account_key))
    target = (owner + 1) % len(cluster.nodes)
    source, destination = cluster.nodes[owner], cluster.nodes[target]
    ask(destination.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[owner])
    ask(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
    keys = ask(source.port, "CLUSTER", "GETKEYSINSLOT", slot, "1000").split()
    half = len(keys) // 2
    assert half >= 1, keys
    # Half the slot's keys moved: a script touching the account is sent where each key is (ASK).
    ask(source.port, "MIGRATE", "127.0.0.1", str(destination.port), "", "0", "5000", "KEYS", *keys[:half])
    migrating = [send(gateway, f"1350013500{n}") for n in range(1, 4)]
    ask(source.port, "MIGRATE", "127.0.0.1", str(destination.port), "", "0", "5000", "KEYS", *keys[half:])
    for node in cluster.nodes:
        ask(node.port, "CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    moved = [send(gateway, f"1350013501{n}") for n in range(4)]
    # While keys are split between two masters a script that needs both is refused (TRYAGAIN):
    # a 503 the client may retry; never a 500. Once the slot has moved, everything succeeds.
    assert {r.status_code for r in migrating} <= {200, 503}, [r.text for r in migrating]
    assert [r.status_code for r in moved] == [200] * 4, [r.text for r in moved]
    assert ask(destination.port, "EXISTS", account_key) == "1"
    info = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10).json()
    sent = 1 + sum(r.status_code == 200 for r in migrating) + 4
    assert info["data"]["total_sent"] == sent


def test_a_failed_master_is_replaced_by_its_replica_and_sends_resume(tmp_path):
    cluster = ClusterServers(tmp_path / "cluster", replicas=1).start()
    try:
        gateway = GatewayProcess(cluster_document(tmp_path, cluster), tmp_path, name="a")
        try:
            with Traffic(gateway) as traffic:
                master = cluster.owner(f"{PREFIX}{{a:1}}:account")
                killed_at = time.monotonic()
                master.process.kill()
                seconds = traffic.recovery(killed_at, within=RECOVERY_SECONDS)
            assert seconds < RECOVERY_SECONDS
            info = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10)
            traffic.check_counted_after_failover(info.json()["data"]["total_sent"])
            print(f"cluster failover: 200s again {seconds:.2f} s after the master was killed")
        finally:
            gateway.stop()
    finally:
        cluster.stop()

"""A gateway on a Sentinel-managed primary keeps sending through a failover: when the primary dies
under traffic, requests get 503 (never 500) until the Sentinel promotes the replica, and 200 again
within seconds, without a restart or a config change. With ``redis.wait_replicas`` it also loses
nothing it answered 200: every such send is on the promoted replica.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import DEMO_HEADERS, default_document, without_limits
from tests.gateway_process import GatewayProcess
from tests.redis_topologies import SentinelGroup
from tests.traffic import Traffic

RECOVERY_SECONDS = 15  # the bound: from the primary's death to sends succeeding again


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, replica and Sentinel of this test's own: the test kills the primary."""
    servers = SentinelGroup(tmp_path / "sentinel").start()
    yield servers
    servers.stop()


def sentinel_document(tmp_path: Path, group: SentinelGroup) -> dict:
    """Store and limiter on the Sentinel's primary, as docs/deployment.md's example has them."""
    document = without_limits(default_document())
    document["server"]["secret_key"] = "sentinel-test-secret-key-0000000"
    document["store"] = {"backend": "redis", "path": str(tmp_path / "unused.db")}
    document["redis"] = {
        "mode": "sentinel",
        "sentinels": group.sentinels,
        "service": group.service,
        "key_prefix": "ha:",
        "timeout": 1,
    }
    document["ratelimit"]["backend"] = "redis"
    return document


def test_killing_the_primary_under_traffic_gives_503s_then_200s_within_15_s(tmp_path, group):
    gateway = GatewayProcess(sentinel_document(tmp_path, group), tmp_path, name="ha")
    try:
        with Traffic(gateway) as traffic:
            killed_at = time.monotonic()
            group.primary.process.kill()
            seconds = traffic.recovery(killed_at, within=RECOVERY_SECONDS)
        assert seconds < RECOVERY_SECONDS
        assert group.master_port() == group.replica.port  # the Sentinel promoted the replica
        info = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10)
        # Every 200 is on the promoted replica (loopback replication outran the kill: see
        # docs/deployment.md for what an asynchronous replica can lose).
        traffic.check_counted_after_failover(info.json()["data"]["total_sent"])
        print(f"sentinel failover: 200s again {seconds:.2f} s after the primary was killed")
    finally:
        gateway.stop()


def test_with_wait_replicas_a_failover_loses_no_acknowledged_send(tmp_path):
    """Two replicas, one confirming each write: the promoted one has every 200, and the other,
    replicating it afterwards, confirms the writes that follow."""
    group = SentinelGroup(tmp_path / "sentinel", replicas=2).start()
    document = sentinel_document(tmp_path, group)
    document["redis"]["wait_replicas"] = 1
    gateway = GatewayProcess(document, tmp_path, name="ha-wait")
    try:
        with Traffic(gateway) as traffic:
            killed_at = time.monotonic()
            group.primary.process.kill()
            seconds = traffic.recovery(killed_at, within=RECOVERY_SECONDS)
        assert group.master_port() in {replica.port for replica in group.replicas}
        traffic.check_kept_after_failover()
        print(
            f"sentinel failover, wait_replicas 1: 200s again {seconds:.2f} s after the kill,"
            f" {len(traffic.acknowledged())} acknowledged sends all kept"
        )
    finally:
        gateway.stop()
        group.stop()

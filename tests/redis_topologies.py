"""Real multi-server Redis set-ups for tests, on loopback: a 3-master Cluster, and a primary with a
replica watched by a Sentinel.

Both are started from the ``redis-server`` and ``redis-cli`` binaries (``make test`` installs them;
a missing one fails the test). Each server has its own directory under the test's temporary one.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.gateway_process import free_port
from tests.redis_server import RedisServer

__all__ = ["ClusterServers", "SentinelGroup", "ask", "wait_for"]


def ask(port: int, *command: str) -> str:
    """One command's raw reply text from a server on loopback (redis-cli, no client state)."""
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()


def wait_for(condition, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is a free port too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class ClusterServers:
    """Three masters (each with ``replicas`` of its own), every slot assigned: ``url`` names one
    node, as a user's would."""

    def __init__(self, directory: Path, masters: int = 3, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes = []
        for index in range(masters * (1 + replicas)):
            node_dir = directory / f"cluster-{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                RedisServer(
                    node_dir,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    pick_port=_cluster_port,
                )
            )

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> ClusterServers:
        try:
            return self._start()
        except Exception:
            self.stop()  # no server left running behind a failed start
            raise

    def _start(self) -> ClusterServers:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        wait_for(
            lambda: all("cluster_state:ok" in ask(node.port, "CLUSTER", "INFO") for node in self.nodes),
            "the cluster to cover every slot",
        )
        wait_for(self._nodes_agree, "every node to know the same slot map")
        if self.replicas:
            wait_for(
                lambda: all(
                    "master_link_status:up" in ask(node.port, "INFO", "replication")
                    for node in self.nodes
                    if self.role(node) == "slave"
                ),
                "the replicas to sync",
            )
        return self

    def _nodes_agree(self) -> bool:
        """Gossip has reached every node: each one tells a client the same map (a client that
        asks a node lagging behind would be sent round in MOVED redirections meanwhile)."""
        done = subprocess.run(
            ["redis-cli", "--cluster", "check", f"127.0.0.1:{self.nodes[0].port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        maps = {ask(node.port, "CLUSTER", "SLOTS") for node in self.nodes}
        return done.returncode == 0 and len(maps) == 1

    def role(self, node: RedisServer) -> str:
        return ask(node.port, "ROLE").split()[0]

    def owner(self, key: str) -> RedisServer:
        """The master that holds ``key``'s slot now."""
        return next(
            node
            for node in self.nodes
            if node.process is not None
            and self.role(node) == "master"
            and ask(node.port, "EXISTS", key) == "1"
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelGroup:
    """A primary, ``replicas`` replicas of it and one Sentinel (quorum 1) that promotes a replica
    ``down_after_ms`` (about a second) after the primary stops answering, and has the others
    replicate the promoted one."""

    service = "mymaster"

    def __init__(self, directory: Path, down_after_ms: int = 1000, replicas: int = 1) -> None:
        self.down_after_ms = down_after_ms
        names = ["replica", *(f"replica-{n}" for n in range(2, replicas + 1))]
        for name in ("primary", "sentinel", *names):
            (directory / name).mkdir(parents=True, exist_ok=True)
        self.primary = RedisServer(directory / "primary")
        # --replicaof once the primary has its port
        self.replicas = [RedisServer(directory / name) for name in names]
        self.replica = self.replicas[0]
        self.sentinel_port = RedisServer(directory / "sentinel").port
        self.sentinel_conf = directory / "sentinel" / "sentinel.conf"
        self.sentinel: subprocess.Popen[bytes] | None = None

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{self.sentinel_port}"]

    def start(self) -> SentinelGroup:
        self.primary.start()
        for replica in self.replicas:
            replica.options = ("--replicaof", "127.0.0.1", str(self.primary.port))
            replica.start()
        wait_for(
            lambda: all(
                "master_link_status:up" in ask(replica.port, "INFO", "replication")
                for replica in self.replicas
            ),
            "the replicas to sync",
        )
        self.sentinel_conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\nprotected-mode no\n"
            f"dir {self.sentinel_conf.parent}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self.sentinel = subprocess.Popen(
            [self.primary.binary, str(self.sentinel_conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._sentinel_sees_the_replicas, "the sentinel to find the replicas")
        return self

    def _sentinel_sees_the_replicas(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.sentinel_port), timeout=0.2):
                pass
        except OSError:
            return False
        known = ask(self.sentinel_port, "SENTINEL", "REPLICAS", self.service)
        return all(str(replica.port) in known for replica in self.replicas)

    def master_port(self) -> int:
        reply = ask(self.sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply.split()[-1])

    def stop(self) -> None:
        if self.sentinel is not None and self.sentinel.poll() is None:
            self.sentinel.terminate()
            self.sentinel.wait(timeout=10)
        for replica in self.replicas:
            replica.stop()
        self.primary.stop()

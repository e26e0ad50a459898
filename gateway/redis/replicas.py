"""Store writes that replicas confirm (``redis.wait_replicas``): each batch of them ends in WAIT.

Redis replicates asynchronously, so a failover can lose a write already answered. ``WAIT`` in the same
pipeline as the writes adds no round trip, only the replicas' acknowledgement. A write fewer replicas
confirmed still stands on the primary: its caller gets :class:`NotReplicated` to undo what it can.
WAIT gets :data:`WAIT_SHARE` of the hurriest caller's time left, so a slow replica never looks like
Redis unreachable. Timing and Cluster: (docs/deployment.md, "What a failover can lose, and what the
gateway does about it"; docs/stores.md, "Writes the replicas confirm").
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError
from redis.typing import EncodableT

from gateway.redis.batch import Batch
from gateway.redis.health import CALL_ENDS

__all__ = ["WAIT_PRECISION", "WAIT_SHARE", "NotReplicated", "ReplicatedBatch"]

WAIT_SHARE = 0.8  # of the time left to the batch's most hurried caller
#: Seconds a WAIT may outlast its timeout: Redis ends it on a tick of its clock (``hz`` 10: 0.1 s).
WAIT_PRECISION = 0.1


class NotReplicated(RedisError):
    """The write ran on the primary, but fewer replicas than asked confirmed it in time."""

    def __init__(self, reply: Any, confirmed: int, wanted: int) -> None:
        super().__init__(f"{confirmed} of {wanted} replicas confirmed the write in time")
        self.reply = reply  # what the write answered on the primary


class ReplicatedBatch(Batch):
    """A :class:`Batch` of scripts (``EVALSHA sha numkeys key…``) that ends in ``WAIT replicas``."""

    def __init__(self, client: Redis | RedisCluster, timeout: float, replicas: int) -> None:
        super().__init__(client, timeout)
        self._replicas = replicas
        self._until = math.inf  # when the first caller of the batch being gathered stops waiting

    def __call__(self, *command: EncodableT) -> Any:
        ends = CALL_ENDS.get()
        self._until = min(self._until, time.monotonic() + self._timeout if ends is None else ends)
        return super().__call__(*command)

    def _deadline(self) -> float:
        until, self._until = self._until, math.inf
        return until

    async def _replies(self, commands: Sequence[tuple[EncodableT, ...]], deadline: float | None) -> list[Any]:
        assert deadline is not None
        wait_ms = int(((deadline - time.monotonic()) * WAIT_SHARE - WAIT_PRECISION) * 1000)
        masters = await self._masters(commands)
        waits = list(dict.fromkeys(masters)) if wait_ms > 0 else []
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            for master in waits:  # a master is named only on a Cluster (``_masters``)
                target = (
                    {}
                    if master is None
                    else {"target_nodes": cast(RedisCluster, self._client).get_node(node_name=master)}
                )
                pipe.execute_command("WAIT", self._replicas, wait_ms, **target)
            replies = await pipe.execute(raise_on_error=False)
        confirmed = dict.fromkeys(masters, 0) | dict(zip(waits, replies[len(commands) :], strict=True))
        return [
            self._checked(reply, confirmed[master])
            for reply, master in zip(replies[: len(commands)], masters, strict=True)
        ]

    async def _masters(self, commands: Sequence[tuple[EncodableT, ...]]) -> list[str | None]:
        """The master each command goes to (by its first key); None for all on one server."""
        if not isinstance(self._client, RedisCluster):
            return [None] * len(commands)
        await self._client.initialize()  # at once when it is already
        # None only when asked for a replica; a slot no master covers raises SlotNotCoveredError
        return [
            cast(ClusterNode, self._client.get_node_from_key(str(command[3]))).name for command in commands
        ]

    def _checked(self, reply: Any, confirmed: Any) -> Any:
        if isinstance(reply, Exception):
            return reply
        count = confirmed if isinstance(confirmed, int) else 0  # an error: nobody confirmed
        return reply if count >= self._replicas else NotReplicated(reply, count, self._replicas)

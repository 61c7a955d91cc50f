"""The worker roll: which Celery workers were heard from lately, per queue.

Every worker's event heartbeat (every 2 s, ``workers.signals``) stamps its node
name in ``{p}:workers:{queue}`` (a sorted set scored by epoch seconds) for each
queue it consumes; the exporter counts the names heard within a window, so a
queue whose workers are all gone reads 0 (``rxfleet_workers``), whatever host
they ran on. Names not heard for an hour are dropped when counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from rxfleet.stores import clock

FORGET_AFTER = 3600.0  # names not heard from this long are dropped from the roll


@dataclass
class WorkerRoll:
    client: redis.Redis
    prefix: str = "rx"

    def key(self, queue: str) -> str:
        return f"{self.prefix}:workers:{queue}"

    def heard(self, node: str, queues: Sequence[str]) -> None:
        """``node`` is alive and consumes ``queues``."""
        now = clock.now()
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zadd(self.key(queue), {node: now})
            pipe.expire(self.key(queue), int(FORGET_AFTER))
        pipe.execute()

    def count(self, queues: Sequence[str], within: float) -> dict[str, int]:
        """Per queue, the workers heard from within the last ``within`` seconds."""
        now = clock.now()
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zremrangebyscore(self.key(queue), "-inf", now - FORGET_AFTER)
            pipe.zcount(self.key(queue), now - within, "+inf")
        replies = pipe.execute()
        return {queue: int(replies[2 * i + 1]) for i, queue in enumerate(queues)}

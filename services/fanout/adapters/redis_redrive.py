"""The redrive's ledger in Redis: one key per replayed event id, expiring after a while.

`fanout:redriven:{group}:{event id}`, so two fanout groups (the platform's and a test's)
keep separate ledgers in one Redis database. The keys outlive the dead-letter topic's
retention, so a dead letter the redrive can still read is one it still remembers.
"""

from __future__ import annotations

from typing import Any, Callable

import redis

from fanout.adapters.redis_home_timelines import TRANSIENT
from fanout.domain.errors import Unavailable


class RedisRedriveLedger:
    """The RedriveLedger port on the Redis client `connect()` gives on first use (the
    worker wires one too, and never uses it)."""

    def __init__(self, connect: Callable[[], redis.Redis], group: str, ttl: int) -> None:
        self.connect, self.group, self.ttl = connect, group, ttl
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        """The Redis client (made on first use)."""
        if self._client is None:
            self._client = self.connect()
        return self._client

    def key(self, event_id: str) -> str:
        """The Redis key that marks `event_id` as replayed."""
        return f"fanout:redriven:{self.group}:{event_id}"

    def is_done(self, event_id: str) -> bool:
        """Whether an earlier redrive replayed this event."""
        return bool(self._call(self.client.exists, self.key(event_id)))

    def mark_done(self, event_id: str) -> None:
        """Record that this event was replayed."""
        self._call(self.client.set, self.key(event_id), b"1", ex=self.ttl)

    @staticmethod
    def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except TRANSIENT as exc:
            raise Unavailable(f"redis: {type(exc).__name__}: {exc}") from exc

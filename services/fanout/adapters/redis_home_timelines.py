"""Home timelines in Redis (`common.home_timeline`), with Redis outages as `Unavailable`."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import redis

from common.home_timeline import HomeTimelines
from fanout.domain.errors import Unavailable

# Errors that say Redis cannot take the write right now, not that the write is wrong.
TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
              redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError)


def client(url: str, timeout: float, max_connections: int = 8) -> redis.Redis:
    """A Redis client whose every call times out, on a bounded pool (the bulkhead)."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout, health_check_interval=30)
    return redis.Redis(connection_pool=pool)


class RedisHomeTimelines:
    """The HomeTimelines port over `common.home_timeline.HomeTimelines`."""

    def __init__(self, timelines: HomeTimelines) -> None:
        self.timelines = timelines

    def deliver(self, tweet_id: int, user_ids: Sequence[int]) -> int:
        return self._call(self.timelines.deliver, tweet_id, user_ids)

    def retract(self, tweet_id: int, user_ids: Sequence[int]) -> int:
        return self._call(self.timelines.retract, tweet_id, user_ids)

    def add(self, user_id: int, tweet_ids: Iterable[int]) -> int:
        return self._call(self.timelines.add, user_id, list(tweet_ids))

    def remove(self, user_id: int, tweet_ids: Iterable[int]) -> int:
        return self._call(self.timelines.remove, user_id, list(tweet_ids))

    def ping(self) -> None:
        """Raise unless Redis answers (readiness)."""
        self.timelines.redis.ping()  # type: ignore[attr-defined]

    def _call(self, method: Callable[..., int], *args: Any) -> int:
        try:
            return method(*args)
        except TRANSIENT as exc:
            raise Unavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith(("OOM", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN")):
                raise Unavailable(f"redis: {exc}") from exc
            raise

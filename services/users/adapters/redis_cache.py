"""Redis adapter: the cache-aside profile cache.

A profile is cached as JSON under `users:profile:{id}` and usernames map to ids under
`users:id-by-name:{username}` (usernames never change, so that mapping is never stale).
Every write that changes a profile or its counts replaces the cached profile with a short-
lived tombstone after it commits, and the cache is filled only where no key exists
(`SET NX`). Plain cache-aside (delete on write, set on read) has a race: a read that
fetched the row just before a write commits can put the old row back just after the
write's delete, and the stale counts then live for the whole TTL. With the tombstone,
that late fill finds the key taken and is dropped. Redis being down only costs hits:
every failure is logged and treated as a miss, so reads fall through to Postgres; once
the Redis breaker opens, the cache is skipped without a round trip until it half-opens.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Callable, Iterable, Sequence, TypeVar

import redis

from common import outages
from common.metrics import CACHE_REQUESTS
from common.resilience import Breaker, CircuitBreakerError
from users.domain.model import User

log = logging.getLogger("murmur.users.cache")
T = TypeVar("T")


def profile_key(user_id: int) -> str:
    """Redis key of one cached profile."""
    return f"users:profile:{user_id}"


def username_key(username: str) -> str:
    """Redis key mapping a username to its user id."""
    return f"users:id-by-name:{username}"


def dump(user: User) -> str:
    """A profile as cached JSON."""
    return json.dumps({
        "id": user.id, "username": user.username, "display_name": user.display_name,
        "bio": user.bio, "followers_count": user.followers_count,
        "following_count": user.following_count, "version": user.version,
        "created_at": user.created_at.isoformat(),
    }, separators=(",", ":"))


def load(raw: bytes | str) -> User:
    """A profile from cached JSON."""
    data = json.loads(raw)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return User(**data)


TOMBSTONE = b"-"


def bounded_client(url: str, *, max_connections: int, pool_timeout: float,
                   socket_timeout: float) -> redis.Redis:
    """A client on a bounded connection pool: at most `max_connections` sockets, and a
    caller finding them all busy waits up to `pool_timeout` s for one, then gets
    `redis.ConnectionError` (a miss to the cache). Without a bound, a slow Redis under
    load would have every request thread open a socket of its own."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout,
        socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


def close_client(client: redis.Redis) -> None:
    """Close a client made by `bounded_client`, and the sockets of its pool."""
    client.close()
    client.connection_pool.disconnect()


def _answered(exc: BaseException) -> bool:
    """Redis answered (a wrong command or type): the server is up."""
    return not outages.is_outage("redis", exc)


def redis_breaker(*, fail_max: int = 5, reset_timeout: float = 10.0,
                  name: str = "users.redis") -> Breaker:
    """The process's Redis breaker. It counts outages only (`common.outages`): unreachable,
    timing out, and also a server that cannot take commands now (loading, read-only,
    out of memory, busy); a wrong command is Redis answering."""
    return Breaker(name, fail_max=fail_max, reset_timeout=reset_timeout, exclude=[_answered])


def guarded(breaker: Breaker, command: Callable[[], T], default: T,
            on_failure: Callable[[redis.RedisError], None]) -> T:
    """`command` through the Redis breaker; `default` when Redis failed (`on_failure` is
    told) or was skipped because it failed moments ago."""
    try:
        return breaker.call(command)
    except CircuitBreakerError:
        return default
    except redis.RedisError as exc:
        on_failure(exc)
        return default


class RedisProfileCache:
    """The ProfileCache on a redis-py client, behind a circuit breaker."""

    def __init__(self, client: redis.Redis, ttl: int, tombstone_ttl: int = 5, *,
                 breaker: Breaker | None = None) -> None:
        # The tombstone outlives any read in flight when a write commits: a read holds
        # its row for at most the pool wait plus the statement timeout (2 s + 2 s).
        self.client, self.ttl, self.tombstone_ttl = client, ttl, tombstone_ttl
        self.breaker = breaker or redis_breaker()

    def _call(self, what: str, command: Callable[[], T], default: T) -> T:
        """`command` through the breaker; `default` (a miss) when Redis failed or is skipped."""
        return guarded(self.breaker, command, default,
                       lambda exc: log.warning("profile cache %s failed: %s", what, exc))

    def get(self, user_id: int) -> User | None:
        """The cached profile, or None on a miss (or when Redis fails)."""
        return self.get_many([user_id]).get(user_id)

    def get_many(self, user_ids: Sequence[int]) -> dict[int, User]:
        """Cached profiles of `user_ids` in one MGET; misses are left out."""
        if not user_ids:
            return {}
        keys = [profile_key(u) for u in user_ids]
        values = self._call("read", lambda: self.client.mget(keys), [None] * len(keys))
        found = {}
        for user_id, raw in zip(user_ids, values):
            if raw is not None and raw != TOMBSTONE:
                try:
                    found[user_id] = load(raw)
                except (ValueError, TypeError, KeyError):
                    continue  # an entry from an older layout: a miss, overwritten later
        CACHE_REQUESTS.labels("profile", "hit").inc(len(found))
        CACHE_REQUESTS.labels("profile", "miss").inc(len(user_ids) - len(found))
        return found

    def id_for(self, username: str) -> int | None:
        """The id cached for `username`, or None."""
        raw = self._call("read", lambda: self.client.get(username_key(username)), None)
        return int(raw) if raw is not None else None

    def put(self, users: Iterable[User]) -> None:
        """Cache profiles (and their username mappings) for the TTL."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for user in users:
            pipe.set(profile_key(user.id), dump(user), ex=self.ttl, nx=True)
            pipe.set(username_key(user.username), user.id, ex=self.ttl)
            count += 1
        if count:
            self._call("write", pipe.execute, None)

    def forget(self, *user_ids: int) -> None:
        """Invalidate cached profiles after a write (a failure leaves them stale for the TTL)."""
        if not user_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.set(profile_key(user_id), TOMBSTONE, ex=self.tombstone_ttl)
        self._call(f"invalidation of {user_ids}", pipe.execute, None)

    def ping(self) -> None:
        """Raise unless Redis answers PING."""
        self.client.ping()

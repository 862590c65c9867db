"""Redis adapter: failed sign-ins counted per account and per address.

Each failure increments two counters, `users:sign-in:account:{username}` and
`users:sign-in:address:{address}`, that expire a window after the first failure in it
(fixed windows: one INCR and one EXPIRE NX, no scripts). Once either counter reaches its
limit, every attempt for that account or from that address is refused until the counter
expires, before any password is hashed. A successful sign-in clears its account's counter.

Redis being down must not lock everyone out: the throttle then lets attempts through
(logged; the password bulkhead and the edge's per-address rate limit still bound them).
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import redis

from common.resilience import Breaker
from users.adapters.redis_cache import guarded

log = logging.getLogger("murmur.users.sign_ins")
T = TypeVar("T")


def account_key(username: str) -> str:
    """Redis key counting an account's failed sign-ins."""
    return f"users:sign-in:account:{username}"


def address_key(address: str) -> str:
    """Redis key counting an address's failed sign-ins."""
    return f"users:sign-in:address:{address}"


class RedisSignInThrottle:
    """The SignInThrottle on Redis counters, behind the process's Redis breaker."""

    def __init__(self, client: redis.Redis, breaker: Breaker, *, window: int,
                 account_failures: int, address_failures: int) -> None:
        self.client, self.breaker = client, breaker
        self.window = window
        self.account_failures, self.address_failures = account_failures, address_failures

    def _keys(self, username: str, client: str) -> list[tuple[str, int]]:
        keys = [(account_key(username), self.account_failures)]
        if client:
            keys.append((address_key(client), self.address_failures))
        return keys

    def _call(self, what: str, command: Callable[[], T], default: T) -> T:
        return guarded(self.breaker, command, default, lambda exc: log.warning(
            "sign-in throttle %s failed, not throttling: %s", what, exc))

    def wait_for(self, username: str, client: str) -> int:
        """Seconds until this account and address may try again (0: now)."""
        keys = self._keys(username, client)

        def read() -> list:
            pipe = self.client.pipeline(transaction=False)
            for key, _ in keys:
                pipe.get(key)
                pipe.ttl(key)
            return pipe.execute()

        replies = self._call("read", read, [])
        wait = 0
        for (_, limit), count, ttl in zip(keys, replies[::2], replies[1::2]):
            if count is not None and int(count) >= limit:
                wait = max(wait, ttl if ttl and ttl > 0 else self.window)
        return wait

    def failed(self, username: str, client: str) -> None:
        """Count a failed sign-in against the account and the address."""

        def count() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key, _ in self._keys(username, client):
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
            pipe.execute()

        self._call("count", count, None)

    def succeeded(self, username: str) -> None:
        """Forget the account's failures: its owner got in."""
        self._call("clear", lambda: self.client.delete(account_key(username)), None)

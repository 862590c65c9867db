"""The users service as the timeline sees it: whom a user follows.

Calls go through the shared resilient client (`common.client`): GETs retried with full
jitter within the request's deadline, the users breaker counting outages only, the
remaining budget sent downstream (`Murmur-Deadline`). An outage of users, or an answer a
healthy users would not give, reaches the handlers as `DependencyUnavailable`.
"""

from __future__ import annotations

import logging

import redis

from common.client import (BadAnswer, HttpClient, PeerConfig, PeerError, PeerUnavailable,
                           Rejected)
from common.resilience import Breaker
from timeline.adapters.guard import Guard
from timeline.domain.errors import DependencyUnavailable

log = logging.getLogger("murmur.timeline.users")


class UsersClient:
    """Calls to users' internal API, each bounded by a timeout and the request's deadline."""

    def __init__(self, base_url: str, timeout: float, pool_size: int = 16, *,
                 breaker: Breaker | None = None, attempts: int = 1) -> None:
        self.http = HttpClient(PeerConfig("users", base_url, connect_timeout=timeout,
                                          read_timeout=timeout, pool_size=pool_size,
                                          retry_attempts=attempts), breaker=breaker)
        self.breaker = self.http.breaker

    def followee_ids(self, user_id: int, min_followers: int, limit: int,
                     pulled: bool = False) -> list[int]:
        """Whom `user_id` follows among authors with at least `min_followers` followers,
        and with `pulled` also among those users has ever counted as celebrities."""
        params: dict[str, object] = {"min_followers": min_followers, "limit": limit}
        if pulled:
            params["pulled"] = "true"
        try:
            body = self.http.get_object(f"/internal/users/{user_id}/followee-ids",
                                        params=params)
        except Rejected as exc:
            if exc.status == 404:
                return []  # an unknown user follows nobody
            raise DependencyUnavailable(f"users answered {exc.status}") from exc
        except BadAnswer as exc:
            raise DependencyUnavailable(f"users answered a malformed followee list: {exc}") from exc
        except PeerUnavailable as exc:
            raise DependencyUnavailable(str(exc), retry_in=max(1, round(exc.retry_after or 1))) from exc
        except PeerError as exc:
            raise DependencyUnavailable(str(exc)) from exc
        try:
            return [int(i) for i in body["ids"]]
        except (ValueError, KeyError, TypeError) as exc:
            # Not the answer of a healthy users service (a proxy's page, a half-deployed
            # version): as good as no answer, so callers degrade the same way.
            raise DependencyUnavailable(f"users answered a malformed followee list: "
                                        f"{type(exc).__name__}") from exc

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()


class CachedCelebrityFollowees:
    """A user's followees from users; the celebrity subset reused from Redis briefly.

    The subset is every followee whose tweets may not have been fanned out: over the
    threshold now, or counted as a celebrity by users at any time (a tweet posted while
    its author was a celebrity is merged at read time for good, even once the author has
    fallen below). Tweets that were fanned out as well come twice, and the merge keeps one.

    Every home-timeline read needs the celebrity list, and it changes only when the user
    follows someone or an author crosses the threshold, so a short TTL saves most of the
    calls. The cache is optional: without Redis every read asks users.
    """

    def __init__(self, users: UsersClient, client: redis.Redis, threshold: int, ttl: int,
                 limit: int, guarded: Guard | None = None) -> None:
        self.users, self.client = users, client
        self.threshold, self.ttl, self.limit = threshold, ttl, limit
        self.guard = guarded or Guard("redis", "redis")

    def celebrities(self, user_id: int) -> list[int]:
        """Ids of the celebrities `user_id` follows."""
        name = f"celebs:{user_id}"
        try:
            cached = self.guard.call(self.client.get, name)
        except DependencyUnavailable:
            cached = None
        if cached is not None:
            return [int(i) for i in cached.split(b",") if i]
        found = self.users.followee_ids(user_id, self.threshold, self.limit, pulled=True)
        try:
            self.guard.call(self.client.set, name, ",".join(map(str, found)), ex=self.ttl)
        except DependencyUnavailable as exc:
            log.info("celebrity followees not cached: %s", exc)
        return found

    def followees(self, user_id: int, limit: int) -> list[int]:
        """Up to `limit` ids of everyone `user_id` follows (not cached)."""
        return self.users.followee_ids(user_id, 0, limit)

"""The users service as the timeline sees it: whom a user follows.

Calls are GETs, so they are retried (full jitter, within the request's deadline), run
through the users breaker, send the remaining budget downstream (`Murmur-Deadline`) and
never wait past it. An outage of users reaches the handlers as `DependencyUnavailable`.
"""

from __future__ import annotations

import logging

import redis
import requests

from common import resilience
from common.http import service_session
from timeline.adapters.guard import Guard
from timeline.domain import DependencyUnavailable

log = logging.getLogger("murmur.timeline.users")


class UsersFailed(Exception):
    """users could not answer (a 5xx or 429): an outage, unlike a 4xx."""


# An unreachable, timing-out or failing users service: these trip the breaker and are
# retried. A 4xx is an answer, not an outage.
TRANSIENT = (requests.RequestException, UsersFailed)


class UsersClient:
    """HTTP calls to users' internal API, each bounded by a timeout and the deadline."""

    def __init__(self, base_url: str, timeout: float, pool_size: int = 16, *,
                 breaker: resilience.Breaker | None = None, attempts: int = 1) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.guard = Guard("users", TRANSIENT, breaker, read_attempts=attempts)
        self.http = service_session(pool_size)

    def followee_ids(self, user_id: int, min_followers: int, limit: int) -> list[int]:
        """Whom `user_id` follows among authors with at least `min_followers` followers."""
        resp = self.guard.read("followee_ids", self._get,
                               f"/internal/users/{user_id}/followee-ids",
                               {"min_followers": min_followers, "limit": limit})
        if resp.status_code == 404:
            return []
        if resp.status_code != 200:
            raise DependencyUnavailable(f"users answered {resp.status_code}")
        return [int(i) for i in resp.json()["ids"]]

    def _get(self, path: str, params: dict) -> requests.Response:
        resp = self.http.get(f"{self.base_url}{path}", params=params,
                             headers=resilience.deadline_headers(),
                             timeout=resilience.timeout_within(self.timeout))
        if resp.status_code >= 500 or resp.status_code == 429:
            raise UsersFailed(f"users answered {resp.status_code}")
        return resp

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()


class CachedCelebrityFollowees:
    """A user's followees from users; the celebrity subset reused from Redis briefly.

    Every home-timeline read needs the celebrity list, and it changes only when the user
    follows someone or an author crosses the threshold, so a short TTL saves most of the
    calls. The cache is optional: without Redis every read asks users.
    """

    def __init__(self, users: UsersClient, client: redis.Redis, threshold: int, ttl: int,
                 limit: int, guarded: Guard | None = None) -> None:
        self.users, self.client = users, client
        self.threshold, self.ttl, self.limit = threshold, ttl, limit
        self.guard = guarded or Guard("redis", (redis.exceptions.RedisError,))

    def celebrities(self, user_id: int) -> list[int]:
        """Ids of the celebrities `user_id` follows."""
        name = f"celebs:{user_id}"
        try:
            cached = self.guard.call(self.client.get, name)
        except DependencyUnavailable:
            cached = None
        if cached is not None:
            return [int(i) for i in cached.split(b",") if i]
        found = self.users.followee_ids(user_id, self.threshold, self.limit)
        try:
            self.guard.call(self.client.set, name, ",".join(map(str, found)), ex=self.ttl)
        except DependencyUnavailable as exc:
            log.info("celebrity followees not cached: %s", exc)
        return found

    def followees(self, user_id: int, limit: int) -> list[int]:
        """Up to `limit` ids of everyone `user_id` follows (not cached)."""
        return self.users.followee_ids(user_id, 0, limit)

"""The users service as the timeline sees it: whom a user follows among celebrities."""

from __future__ import annotations

import logging

import redis
import requests
from requests.adapters import HTTPAdapter

from timeline.domain import DependencyUnavailable

log = logging.getLogger("murmur.timeline.users")


class UsersClient:
    """HTTP calls to users' internal API, each bounded by a timeout."""

    def __init__(self, base_url: str, timeout: float, pool_size: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def followee_ids(self, user_id: int, min_followers: int, limit: int) -> list[int]:
        """Whom `user_id` follows among authors with at least `min_followers` followers."""
        try:
            resp = self.http.get(
                f"{self.base_url}/internal/users/{user_id}/followee-ids",
                params={"min_followers": min_followers, "limit": limit}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DependencyUnavailable(f"users: {exc}") from exc
        if resp.status_code == 404:
            return []
        if resp.status_code != 200:
            raise DependencyUnavailable(f"users answered {resp.status_code}")
        return [int(i) for i in resp.json()["ids"]]


class CachedCelebrityFollowees:
    """A user's celebrity followees, reused from Redis for a few seconds.

    Every home-timeline read needs this list, and it changes only when the user follows
    someone or an author crosses the threshold, so a short TTL saves most of the calls.
    """

    def __init__(self, users: UsersClient, client: redis.Redis, threshold: int, ttl: int,
                 limit: int) -> None:
        self.users, self.client = users, client
        self.threshold, self.ttl, self.limit = threshold, ttl, limit

    def celebrities(self, user_id: int) -> list[int]:
        """Ids of the celebrities `user_id` follows."""
        name = f"celebs:{user_id}"
        cached = self.client.get(name)
        if cached is not None:
            return [int(i) for i in cached.split(b",") if i]
        found = self.users.followee_ids(user_id, self.threshold, self.limit)
        self.client.set(name, ",".join(map(str, found)), ex=self.ttl)
        return found

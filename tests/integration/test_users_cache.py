"""The profile cache never keeps a profile older than the last committed write."""

from __future__ import annotations

from datetime import datetime, timezone

import redis as redis_lib

from common import config
from users.adapters.redis_cache import RedisProfileCache
from users.domain.model import User


def profile(user_id: int, followers: int) -> User:
    return User(id=user_id, username=f"cache_{user_id}", display_name="", bio="",
                followers_count=followers, following_count=0, version=1,
                created_at=datetime.now(timezone.utc))


def test_a_read_that_fetched_before_a_write_cannot_put_the_old_profile_back():
    client = redis_lib.Redis.from_url(config.stores().redis_url)
    cache = RedisProfileCache(client, ttl=300)
    user_id = 9_000_000_000 + int(datetime.now().timestamp() * 1000) % 1_000_000
    stale = profile(user_id, followers=7)  # what a reader fetched from Postgres ...
    cache.forget(user_id)  # ... just before a follow committed and invalidated the entry
    cache.put([stale])  # the reader's late fill
    assert cache.get(user_id) is None, "the stale profile was put back into the cache"
    client.delete(f"users:profile:{user_id}")
    cache.put([profile(user_id, followers=8)])  # once the tombstone is gone, fills work
    assert cache.get(user_id).followers_count == 8
    client.delete(f"users:profile:{user_id}", f"users:id-by-name:cache_{user_id}")
    client.close()

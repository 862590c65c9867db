"""The timeline's Redis state: home timelines, the tweet cache, idempotency keys, id leases.

Keys (the profile's Redis database keeps test and demo data apart):
`home:{user}` (common.home_timeline), `tweet:{id}` (cached tweet), `idem:tweet:{author}:
{digest}` (Idempotency-Key record), `celebs:{user}` (cached celebrity followees),
`ids:worker:{n}` (snowflake worker-id leases, shared by every service so ids never collide).

Every call goes through the Redis guard (breaker, outages as `DependencyUnavailable`), so
the handlers can serve a home timeline without Redis and treat the cache as optional.
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable, Sequence

import redis
from common import resilience
from common.metrics import CACHE_REQUESTS
from common.config import Stores
from common import home_timeline
from common.ids import LeasedIds, owner_name
from timeline.adapters.guard import Guard
from timeline.domain.model import IdempotencyRecord, Tweet, created_at_of
from timeline.service_layer.ports import FinishedKey


def guard(breaker: resilience.Breaker | None = None) -> Guard:
    """The guard of Redis calls (no retries: every call here is on a request's hot path).

    Outages are `common.outages`' for Redis (down, timing out, loading, read-only, out of
    memory, busy): they trip the breaker. Any other error reply (a wrong command) is a
    bug, not an outage.
    """
    return Guard("redis", "redis", breaker)


WORKER_LEASE_PREFIX = "ids:worker"
DELETED = b"-"  # cache marker of a deleted tweet

# Compare-and-set: replace a value only if nobody changed it since we read it.
_REPLACE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


def connect(stores: Stores, max_connections: int = 32, timeout: float = 1.0) -> redis.Redis:
    """A client with a bounded pool (the bulkhead) and timeouts; connects on first command."""
    pool = redis.BlockingConnectionPool.from_url(
        stores.redis_url, max_connections=max_connections, timeout=timeout,
        socket_timeout=timeout, socket_connect_timeout=min(timeout, stores.connect_timeout),
        health_check_interval=30)
    return redis.Redis(connection_pool=pool)


owner_id = owner_name  # a name for this process that no other process shares


def tweet_key(tweet_id: int) -> str:
    """Redis key of a cached tweet."""
    return f"tweet:{tweet_id}"


def encode_tweet(tweet: Tweet) -> bytes:
    # The creation time is implied by the id, so the cache stores only author and text.
    return json.dumps({"a": tweet.author_id, "t": tweet.text}, separators=(",", ":")).encode()


def decode_tweet(tweet_id: int, raw: bytes) -> Tweet:
    data = json.loads(raw)
    return Tweet(tweet_id, int(data["a"]), data["t"], created_at_of(tweet_id))


class RedisTweetCache:
    """Cache-aside tweets: MGET on read, pipelined SET EX on fill.

    A deleted tweet leaves a short-lived marker instead of nothing, and fills use SET NX:
    a reader that loaded the tweet just before the delete cannot put it back, and reads of
    the deleted id (still in followers' timelines until fan-out removes it) skip the store.
    """

    def __init__(self, client: redis.Redis, ttl: int, deleted_ttl: int = 3600,
                 guarded: Guard | None = None) -> None:
        self.client, self.ttl, self.deleted_ttl = client, ttl, deleted_ttl
        self.guard = guarded or guard()

    def get_many(self, tweet_ids: Sequence[int]) -> dict[int, Tweet | None]:
        """Cached tweets among `tweet_ids`; None for ids known to be deleted."""
        try:
            values = self.guard.call(self.client.mget, [tweet_key(t) for t in tweet_ids])
        except Exception:
            CACHE_REQUESTS.labels("tweet", "miss").inc(len(tweet_ids))
            raise
        found = {t: (None if raw == DELETED else decode_tweet(t, raw))
                 for t, raw in zip(tweet_ids, values) if raw is not None}
        CACHE_REQUESTS.labels("tweet", "hit").inc(len(found))
        CACHE_REQUESTS.labels("tweet", "miss").inc(len(tweet_ids) - len(found))
        return found

    def put_many(self, tweets: Sequence[Tweet]) -> None:
        """Cache tweets loaded from the store in one round trip, never over a marker."""
        pipe = self.client.pipeline(transaction=False)
        for tweet in tweets:
            pipe.set(tweet_key(tweet.id), encode_tweet(tweet), ex=self.ttl, nx=True)
        self.guard.call(pipe.execute)


def idempotency_key(author_id: int, key: str) -> str:
    """Redis key of an author's Idempotency-Key (hashed: keys are client-chosen strings)."""
    return f"idem:tweet:{author_id}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def encode_record(record: IdempotencyRecord) -> str:
    return f"{record.tweet_id}|{record.fingerprint}|{record.state}|{record.since_ms}"


def decode_record(raw: bytes | str) -> IdempotencyRecord:
    text = raw.decode() if isinstance(raw, bytes) else raw
    tweet_id, digest, state, since = text.split("|")
    return IdempotencyRecord(int(tweet_id), digest, state, int(since))


class RedisIdempotency:
    """Idempotency-Key records with a TTL, claimed with SET NX so one request wins."""

    def __init__(self, client: redis.Redis, ttl: int, guarded: Guard | None = None) -> None:
        self.client, self.ttl = client, ttl
        self.guard = guarded or guard()
        self._replace_if = client.register_script(_REPLACE_IF)

    def claim(self, author_id: int, key: str,
              record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store `record` if the key is free (None), else return the record already there."""
        name = idempotency_key(author_id, key)
        while True:
            previous = self.guard.call(self.client.set, name, encode_record(record), nx=True,
                                       ex=self.ttl, get=True)
            if previous is not None:
                return decode_record(previous)
            # SET NX GET answers nil both when it set the key and when it lost a race to a
            # key that then expired; only a read tells which.
            current = self.guard.call(self.client.get, name)
            if current is not None and decode_record(current) == record:
                return None

    def replace(self, author_id: int, key: str, expected: IdempotencyRecord,
                new: IdempotencyRecord) -> bool:
        """Swap `expected` for `new` atomically; False if someone changed it meanwhile."""
        return bool(self.guard.call(self._replace_if, keys=[idempotency_key(author_id, key)],
                                    args=[encode_record(expected), encode_record(new)]))

    def stage_done(self, pipe, author_id: int, key: str, record: IdempotencyRecord) -> None:
        """Queue the final record on the caller's pipeline."""
        pipe.set(idempotency_key(author_id, key), encode_record(record), ex=self.ttl)


class RedisHomeTimelines:
    """Home timelines (`common.home_timeline`), and the Redis side of posting and deleting,
    each in a single pipelined round trip.

    `bucket_of(author_id)` names the outbox bucket of an author's events: the relay is
    nudged on the wake-up channel to publish that bucket at once.
    """

    def __init__(self, client: redis.Redis, timelines: home_timeline.HomeTimelines,
                 cache: RedisTweetCache, idempotency: RedisIdempotency, wakeup_channel: str,
                 bucket_of: Callable[[int], int], guarded: Guard | None = None) -> None:
        self.client, self.timelines, self.cache = client, timelines, cache
        self.idempotency, self.wakeup_channel = idempotency, wakeup_channel
        self.bucket_of = bucket_of
        self.guard = guarded or guard()

    def record_post(self, tweet: Tweet, finished: FinishedKey | None) -> None:
        """Own timeline entry, cache entry, finished idempotency record, relay nudge."""
        pipe = self.client.pipeline(transaction=False)
        self.timelines.stage_add(pipe, tweet.author_id, [tweet.id])
        pipe.set(tweet_key(tweet.id), encode_tweet(tweet), ex=self.cache.ttl)
        if finished is not None:
            self.idempotency.stage_done(pipe, *finished)
        pipe.publish(self.wakeup_channel, str(self.bucket_of(tweet.author_id)))
        self.guard.call(pipe.execute)

    def record_delete(self, tweet: Tweet) -> None:
        """Drop the tweet from its author's timeline, mark it deleted in the cache, nudge."""
        pipe = self.client.pipeline(transaction=False)
        self.timelines.stage_remove(pipe, tweet.author_id, [tweet.id])
        pipe.set(tweet_key(tweet.id), DELETED, ex=self.cache.deleted_ttl)
        pipe.publish(self.wakeup_channel, str(self.bucket_of(tweet.author_id)))
        self.guard.call(pipe.execute)

    def page(self, user_id: int, before: int | None, limit: int) -> list[int]:
        """Tweet ids of a home timeline, newest first, below `before`."""
        return self.guard.call(self.timelines.page, user_id, before, limit)


def leased_ids(client: redis.Redis, process: str) -> LeasedIds:
    """This process's id source: a worker id leased in Redis, shared prefix with users."""
    return LeasedIds(client, owner_id(process), WORKER_LEASE_PREFIX)
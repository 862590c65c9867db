"""Home timelines in Redis: capped, ordered, idempotent sets of tweet ids.

Each `home:{user_id}` is a sorted set whose members are tweet ids as 8-byte big-endian
strings, all with score 0. With equal scores Redis orders members byte-wise, and for
fixed-width big-endian unsigned integers byte order is numeric order, so the set is sorted
by id (and so by time) without storing ids in the double-precision score, which cannot
hold a 64-bit id exactly. Small sets stay listpack-encoded: about 12 bytes per entry.

ZADD of an existing member changes nothing, so a redelivered event never duplicates an
entry. The timeline service reads these sets and writes the author's own entry; the fanout
worker writes followers' entries. The two share this module so they share one format.
"""

from __future__ import annotations

import struct
from typing import Iterable, Protocol, Sequence

from opentelemetry import trace

_ID = struct.Struct(">Q")
_tracer = trace.get_tracer("murmur.home_timeline")

# One call writes one tweet id into many timelines and trims each to the cap: far fewer
# round trips and command parses than a ZADD + ZREMRANGEBYRANK pair per follower.
_ADD_TO_MANY = """
local cap = tonumber(ARGV[2])
local added = 0
for _, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 0, ARGV[1]) == 1 then
    added = added + 1
    -- Only a new entry can push a timeline over the cap (a redelivery adds nothing).
    if redis.call('ZCARD', key) > cap then
      redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    end
  end
end
return added
"""

_REMOVE_FROM_MANY = """
local removed = 0
for _, key in ipairs(KEYS) do
  removed = removed + redis.call('ZREM', key, ARGV[1])
end
return removed
"""


def encode(tweet_id: int) -> bytes:
    """A tweet id as the 8-byte member stored in a home timeline."""
    return _ID.pack(tweet_id)


def decode(member: bytes) -> int:
    """The tweet id of a home-timeline member."""
    return _ID.unpack(member)[0]


def key(user_id: int) -> str:
    """Redis key of one user's home timeline."""
    return f"home:{user_id}"


def _describe(span, tweet_id: int, user_ids: Sequence[int], changed: int) -> None:
    if span.is_recording():
        span.set_attributes({"murmur.tweet_id": str(tweet_id),
                             "murmur.timelines": len(user_ids), "murmur.changed": changed})


class RedisLike(Protocol):
    def register_script(self, script: str): ...

    def pipeline(self, transaction: bool = ...): ...

    def zrevrangebylex(self, name, max, min, start=None, num=None): ...  # noqa: A002


class HomeTimelines:
    """Reads and writes home timelines on one Redis client."""

    def __init__(self, redis: RedisLike, cap: int = 800, batch: int = 1000) -> None:
        self.redis, self.cap, self.batch = redis, cap, batch
        self._add = redis.register_script(_ADD_TO_MANY)
        self._remove = redis.register_script(_REMOVE_FROM_MANY)

    def deliver(self, tweet_id: int, user_ids: Sequence[int]) -> int:
        """Put `tweet_id` into each user's timeline; returns how many entries were new."""
        with _tracer.start_as_current_span("home_timeline.deliver") as span:
            added = self._run_batched(self._add, user_ids, [encode(tweet_id), self.cap])
            _describe(span, tweet_id, user_ids, added)
            return added

    def retract(self, tweet_id: int, user_ids: Sequence[int]) -> int:
        """Remove `tweet_id` from each user's timeline; returns how many entries went."""
        with _tracer.start_as_current_span("home_timeline.retract") as span:
            removed = self._run_batched(self._remove, user_ids, [encode(tweet_id)])
            _describe(span, tweet_id, user_ids, removed)
            return removed

    def _run_batched(self, script, user_ids: Sequence[int], args: list) -> int:
        if not user_ids:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(user_ids), self.batch):
            chunk = user_ids[start:start + self.batch]
            script(keys=[key(u) for u in chunk], args=args, client=pipe)
        return sum(int(n) for n in pipe.execute())

    def add(self, user_id: int, tweet_ids: Iterable[int]) -> int:
        """Put several tweets into one user's timeline (backfill, own posts), capped."""
        members = {encode(t): 0 for t in tweet_ids}
        if not members:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(key(user_id), members)
        pipe.zremrangebyrank(key(user_id), 0, -(self.cap + 1))
        added, _ = pipe.execute()
        return int(added)

    def stage_add(self, pipe, user_id: int, tweet_ids: Iterable[int]) -> None:
        """Queue `add` on the caller's pipeline, to share its round trip with other writes."""
        members = {encode(t): 0 for t in tweet_ids}
        if members:
            pipe.zadd(key(user_id), members)
            pipe.zremrangebyrank(key(user_id), 0, -(self.cap + 1))

    def stage_remove(self, pipe, user_id: int, tweet_ids: Iterable[int]) -> None:
        """Queue `remove` on the caller's pipeline, to share its round trip with other writes."""
        members = [encode(t) for t in tweet_ids]
        if members:
            pipe.zrem(key(user_id), *members)

    def remove(self, user_id: int, tweet_ids: Iterable[int]) -> int:
        """Remove several tweets from one user's timeline (unfollow)."""
        members = [encode(t) for t in tweet_ids]
        return int(self.redis.zrem(key(user_id), *members)) if members else 0

    def page(self, user_id: int, before: int | None = None, limit: int = 20) -> list[int]:
        """Up to `limit` tweet ids of the user's timeline, newest first, older than `before`."""
        upper = b"(" + encode(before) if before is not None else b"+"
        members = self.redis.zrevrangebylex(key(user_id), upper, b"-", start=0, num=limit)
        return [decode(m) for m in members]

    def exists(self, user_id: int) -> bool:
        """Whether the user has a home timeline in Redis at all."""
        return bool(self.redis.exists(key(user_id)))

    def size(self, user_id: int) -> int:
        """Number of entries in the user's timeline."""
        return int(self.redis.zcard(key(user_id)))

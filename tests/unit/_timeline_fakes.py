"""In-memory ports of the timeline use cases, shared by the timeline unit tests."""

from __future__ import annotations

from dataclasses import replace

from common import ids
from timeline.domain.errors import DependencyUnavailable
from timeline.domain.model import Author, IdempotencyRecord, Tweet
from timeline.service_layer.ports import Ports


class FakeTweets:
    """The tweet store; records each event with its headers, as the outbox would."""

    def __init__(self) -> None:
        self.tweets: dict[int, Tweet] = {}
        self.outbox: list[tuple[object, dict[str, str]]] = []
        self.deleted: dict[int, int] = {}  # tweet id -> author id, as the store remembers
        self.fail_next_save = False

    @property
    def events(self) -> list[object]:
        return [event for event, _ in self.outbox]

    def save_posted(self, tweet, event, headers):
        if self.fail_next_save:
            self.fail_next_save = False
            raise TimeoutError("write timed out")
        self.tweets[tweet.id] = tweet
        self.outbox.append((event, dict(headers)))

    def delete(self, tweet, event, headers):
        self.tweets.pop(tweet.id, None)
        self.deleted[tweet.id] = tweet.author_id
        self.outbox.append((event, dict(headers)))

    def deleted_author(self, tweet_id):
        return self.deleted.get(tweet_id)

    def get_many(self, tweet_ids):
        return {t: self.tweets[t] for t in tweet_ids if t in self.tweets}

    def author_tweet_ids(self, author_id, before, limit):
        found = sorted((t.id for t in self.tweets.values() if t.author_id == author_id
                        and (before is None or t.id < before)), reverse=True)
        return found[:limit]

    def recent_tweet_ids(self, author_ids, before, limit):
        merged = {i for a in author_ids for i in self.author_tweet_ids(a, before, limit)}
        return sorted(merged, reverse=True)[:limit]


class FakeCache:
    def __init__(self) -> None:
        self.tweets: dict[int, Tweet] = {}

    def get_many(self, tweet_ids):
        return {t: self.tweets[t] for t in tweet_ids if t in self.tweets}

    def put_many(self, tweets):
        self.tweets.update({t.id: t for t in tweets})


class FakeHome:
    """Home timelines plus the Redis side of a post: own entry, cache, finished key."""

    def __init__(self, cache: FakeCache, idempotency: "FakeIdempotency") -> None:
        self.timelines: dict[int, set[int]] = {}
        self.cache, self.idempotency = cache, idempotency

    def record_post(self, tweet, finished):
        self.timelines.setdefault(tweet.author_id, set()).add(tweet.id)
        self.cache.put_many([tweet])
        if finished is not None:
            author_id, key, record = finished
            self.idempotency.records[(author_id, key)] = record

    def record_delete(self, tweet):
        self.timelines.get(tweet.author_id, set()).discard(tweet.id)
        self.cache.tweets.pop(tweet.id, None)

    def page(self, user_id, before, limit):
        found = sorted((t for t in self.timelines.get(user_id, set())
                        if before is None or t < before), reverse=True)
        return found[:limit]


class FakeIdempotency:
    def __init__(self) -> None:
        self.records: dict[tuple[int, str], IdempotencyRecord] = {}

    def claim(self, author_id, key, record):
        existing = self.records.get((author_id, key))
        if existing is None:
            self.records[(author_id, key)] = record
        return existing

    def replace(self, author_id, key, expected, new):
        if self.records.get((author_id, key)) != expected:
            return False
        self.records[(author_id, key)] = new
        return True


class FakeFollowees:
    """users as the timeline sees it; `down` makes every call an outage."""

    def __init__(self, celebrities=(), down=False, following=()) -> None:
        self.ids, self.down, self.following = list(celebrities), down, list(following)
        self.asked_limits: list[int] = []

    def celebrities(self, user_id):
        if self.down:
            raise DependencyUnavailable("users is down")
        return self.ids

    def followees(self, user_id, limit):
        self.asked_limits.append(limit)
        if self.down:
            raise DependencyUnavailable("users is down")
        return self.following[:limit]


class MemoryAuthors:
    """The author projection in memory, with the contract of the real one: per author,
    the copy with the highest version ever recorded."""

    def __init__(self) -> None:
        self.rows: dict = {}
        self.statuses: dict = {}  # author id -> CelebrityStatus, kept apart from profiles
        self.down = False
        self.writes = 0

    def get_many(self, author_ids):
        if self.down:
            raise DependencyUnavailable("cassandra: authors unreachable")
        found = {}
        for a in author_ids:
            status = self.statuses.get(a)
            if a in self.rows or status is not None:
                row = self.rows.get(a) or Author(a)
                found[a] = replace(row, celebrity=bool(status and status.celebrity))
        return found

    def id_by_username(self, username):
        if self.down:
            raise DependencyUnavailable("cassandra: authors unreachable")
        return next((a.id for a in self.rows.values() if a.username == username), None)

    def record(self, author):
        if self.down:
            raise DependencyUnavailable("cassandra: authors unreachable")
        self.writes += 1
        if author.supersedes(self.rows.get(author.id)):
            self.rows[author.id] = author

    def record_status(self, status):
        if self.down:
            raise DependencyUnavailable("cassandra: authors unreachable")
        self.writes += 1
        held = self.statuses.get(status.author_id)
        if held is None or status.version > held.version:
            self.statuses[status.author_id] = status


class RedisDown:
    """Stands in for every Redis-backed port while Redis is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name):
        def unavailable(*args, **kwargs):
            self.calls += 1
            raise DependencyUnavailable("redis: connection refused", retry_in=2)
        return unavailable


class Counter:
    def __init__(self) -> None:
        self._gen = ids.IdGenerator(1)

    def next_id(self):
        return self._gen.next_id()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def memory_ports() -> Ports:
    """Ports over fresh in-memory fakes, with a manual clock."""
    cache, idempotency = FakeCache(), FakeIdempotency()
    clock = Clock()
    return Ports(tweets=FakeTweets(), cache=cache, home=FakeHome(cache, idempotency),
                 idempotency=idempotency, followees=FakeFollowees(), authors=MemoryAuthors(),
                 ids=Counter(), idempotency_wait=3.0, clock=clock, sleep=clock.sleep)

"""The users adapters' breakers, deadlines and metrics, against fake pools and clients."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone

import psycopg
import pytest
import redis
from prometheus_client import REGISTRY
from psycopg import errors
from psycopg_pool import PoolTimeout

from redis._parsers.base import BaseParser

from common import resilience
from common.resilience import DeadlineExceeded
from users.adapters.postgres import PostgresUsers, postgres_breaker
from users.adapters.redis_cache import RedisProfileCache, dump, profile_key, redis_breaker
from users.domain.errors import StoreUnavailable, UsernameTaken
from users.domain.events import UserRegistered
from users.domain.model import User


class FakeConnection:
    def __init__(self, result) -> None:
        self.result = result

    def execute(self, _query, _params=None):
        if isinstance(self.result, BaseException):
            raise self.result
        return self

    def cursor(self, row_factory=None):
        return self

    @contextmanager
    def transaction(self):
        yield self

    def fetchone(self):
        return self.result


class FakePool:
    """A pool whose connections answer `result` (or raise it), or that raises `refuse`."""

    timeout = 2.0

    def __init__(self, result=None, refuse: BaseException | None = None) -> None:
        self.result, self.refuse = result, refuse
        self.waits: list[float] = []
        self.stats = {"pool_min": 1, "pool_max": 8, "pool_size": 3, "pool_available": 1,
                      "requests_waiting": 2}

    @contextmanager
    def connection(self, timeout=None):
        self.waits.append(timeout)
        if self.refuse is not None:
            raise self.refuse
        yield FakeConnection(self.result)

    def get_stats(self):
        return dict(self.stats)


def repo(pool: FakePool, fail_max: int = 3, reset_timeout: float = 30.0) -> PostgresUsers:
    """The adapter with the breaker the bootstrap gives it (a new one per repository)."""
    breaker = postgres_breaker(fail_max=fail_max, reset_timeout=reset_timeout)
    return PostgresUsers(pool, "test.follows.v1", users_topic="test.users.v1", breaker=breaker)


@contextmanager
def deadline(seconds: float):
    token = resilience.start_deadline(None, seconds)
    try:
        yield
    finally:
        resilience.end_deadline(token)


@pytest.mark.parametrize("outage", [psycopg.OperationalError("connection refused"),
                                    psycopg.InterfaceError("the connection is lost"),
                                    errors.QueryCanceled("canceling statement due to timeout"),
                                    errors.AdminShutdown("terminating connection")])
def test_an_outage_is_a_store_unavailable_and_counts_against_the_database(outage):
    users = repo(FakePool(result=outage), fail_max=2)
    with pytest.raises(StoreUnavailable) as exc:
        users.by_id(1)
    assert exc.value.__cause__ is outage
    with pytest.raises(StoreUnavailable):
        users.by_id(1)
    assert users.breaker.is_open


@pytest.mark.parametrize("answer", [errors.DeadlockDetected("deadlock detected"),
                                    errors.SerializationFailure("could not serialize access"),
                                    errors.LockNotAvailable("could not obtain lock")])
def test_a_lost_race_is_postgres_answering_not_an_outage(answer):
    """Raised under OperationalError like an outage, but the database is fine: the error
    leaves unchanged (no StoreUnavailable) and the breaker does not count it."""
    users = repo(FakePool(result=answer), fail_max=1)
    for _ in range(3):
        with pytest.raises(type(answer)):
            users.by_id(1)
    assert not users.breaker.is_open and users.down_for() == 0


def test_a_failing_database_is_a_503_and_opens_the_breaker_after_fail_max():
    pool = FakePool(refuse=psycopg.OperationalError("connection refused"))
    users = repo(pool, fail_max=3)
    for attempt in range(1, 4):
        with pytest.raises(StoreUnavailable) as exc:
            users.by_id(1)
        # The third failure opens the breaker: from then on, retry when it half-opens.
        assert exc.value.retry_in == (1 if attempt < 3 else 30)
    assert users.breaker.is_open and users.down_for() == 30
    tried = len(pool.waits)
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as exc:
        users.by_id(1)
    elapsed = time.perf_counter() - started
    assert len(pool.waits) == tried, "an open breaker must not touch the pool"
    assert exc.value.retry_in == 30
    assert elapsed < 0.01


def test_a_refused_statement_does_not_count_against_the_database():
    violation = errors.UniqueViolation("duplicate key")
    users = repo(FakePool(result=violation), fail_max=1)
    with pytest.raises(errors.UniqueViolation):
        users.by_id(1)
    assert not users.breaker.is_open and users.down_for() == 0


def test_a_unique_username_violation_is_a_taken_username():
    class Taken(errors.UniqueViolation):
        class diag:  # noqa: N801 - mimics psycopg's Diagnostic
            constraint_name = "users_username_key"

    users = repo(FakePool(result=Taken("duplicate key")), fail_max=1)
    with pytest.raises(UsernameTaken):
        users.add(UserRegistered(1, "alice", "Alice", 1), "hash", {})
    assert not users.breaker.is_open


def test_the_breaker_closes_again_after_a_successful_trial():
    pool = FakePool(refuse=psycopg.OperationalError("down"))
    users = repo(pool, fail_max=1, reset_timeout=0.05)
    with pytest.raises(StoreUnavailable):
        users.by_id(1)
    assert users.breaker.is_open
    pool.refuse = None
    time.sleep(0.06)  # the breaker's own reset timeout, not synchronisation with a thread
    assert users.down_for() == 0
    assert users.by_id(1) is None  # FakeConnection answers no row
    assert not users.breaker.is_open


def test_the_pool_wait_is_bounded_by_the_request_deadline():
    pool = FakePool(result=None)
    users = repo(pool)
    with deadline(0.5):
        users.by_id(1)
    users.by_id(1)
    assert 0.4 < pool.waits[0] <= 0.5 and pool.waits[1] == 2.0


def test_a_pool_wait_cut_short_by_the_deadline_is_not_held_against_the_database():
    users = repo(FakePool(refuse=PoolTimeout("no connection")), fail_max=1)
    with deadline(0.5), pytest.raises(DeadlineExceeded):
        users.by_id(1)
    assert not users.breaker.is_open


def test_a_passed_deadline_fails_before_the_pool_is_asked():
    pool = FakePool(result=None)
    with deadline(-1), pytest.raises(DeadlineExceeded):
        repo(pool).by_id(1)
    assert pool.waits == []


def test_pool_saturation_is_exported_at_checkout():
    repo(FakePool(result=None)).by_id(1)
    sample = lambda name: REGISTRY.get_sample_value(name, {"dependency": "postgres"})  # noqa: E731
    assert sample("murmur_pool_in_use") == 3 - 1  # opened minus idle
    assert sample("murmur_pool_size") == 8
    assert sample("murmur_pool_waiting") == 2


# ------------------------------------------------------------------------------ redis


class DownRedis:
    """A redis-py client whose every command fails to connect; counts the attempts."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *_args, **_kwargs):
        self.calls += 1
        raise redis.ConnectionError("connection refused")

    mget = get = _fail

    def pipeline(self, transaction=False):
        client = self

        class Pipe:
            def set(self, *_args, **_kwargs):
                return self

            def execute(self):
                return client._fail()

        return Pipe()


class UpRedis:
    def __init__(self, values: dict[str, bytes]) -> None:
        self.values = values

    def mget(self, keys):
        return [self.values.get(k) for k in keys]


def user(user_id: int) -> User:
    return User(id=user_id, username=f"u{user_id}", display_name="", bio="", followers_count=0,
                following_count=0, version=1, created_at=datetime.now(timezone.utc))


def redis_reply(message: str) -> redis.RedisError:
    """The exception redis-py raises for an error reply `message` from the server."""
    return BaseParser.__new__(BaseParser).parse_error(message)


class ReplyingRedis:
    """A redis-py client whose every read answers with the error reply `exc`."""

    def __init__(self, exc: redis.RedisError) -> None:
        self.exc, self.calls = exc, 0

    def mget(self, _keys):
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize("reply", ["READONLY You can't write against a read only replica.",
                                   "OOM command not allowed when used memory > 'maxmemory'.",
                                   "BUSY Redis is busy running a script.",
                                   "LOADING Redis is loading the dataset in memory"])
def test_a_redis_that_cannot_take_commands_now_is_an_outage_of_the_cache(reply):
    client = ReplyingRedis(redis_reply(reply))
    cache = RedisProfileCache(client, ttl=60, breaker=redis_breaker(fail_max=2,
                                                                    reset_timeout=30))
    assert cache.get(1) is None and cache.get(2) is None  # misses
    assert cache.breaker.is_open
    assert cache.get(3) is None and client.calls == 2, "an open breaker skips Redis"


def test_a_wrong_command_is_a_miss_that_does_not_count_against_redis():
    client = ReplyingRedis(redis_reply("WRONGTYPE Operation against a key holding the wrong "
                                       "kind of value"))
    cache = RedisProfileCache(client, ttl=60, breaker=redis_breaker(fail_max=2,
                                                                    reset_timeout=30))
    for user_id in range(5):
        assert cache.get(user_id) is None
    assert not cache.breaker.is_open and client.calls == 5


def test_a_down_cache_is_a_miss_and_once_its_breaker_opens_redis_is_skipped():
    client = DownRedis()
    breaker = redis_breaker(fail_max=2, reset_timeout=30)
    cache = RedisProfileCache(client, ttl=60, breaker=breaker)
    assert cache.get(1) is None and cache.id_for("alice") is None
    assert breaker.is_open and client.calls == 2
    started = time.perf_counter()
    assert cache.get_many([1, 2]) == {}
    assert cache.id_for("alice") is None
    cache.put([user(1)])
    cache.forget(1)
    assert time.perf_counter() - started < 0.01
    assert client.calls == 2, "an open breaker must skip Redis entirely"


def test_profile_lookups_are_counted_as_hits_and_misses():
    def count(result: str) -> float:
        return REGISTRY.get_sample_value("murmur_cache_requests_total",
                                         {"cache": "profile", "result": result}) or 0.0

    hits, misses = count("hit"), count("miss")
    cache = RedisProfileCache(UpRedis({profile_key(1): dump(user(1)).encode(),
                                       profile_key(2): b"-"}), ttl=60)
    assert set(cache.get_many([1, 2, 3])) == {1}  # 2 is a tombstone, 3 is not cached
    assert (count("hit") - hits, count("miss") - misses) == (1, 2)

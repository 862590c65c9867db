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

from common import resilience
from common.resilience import Breaker, DeadlineExceeded
from users.adapters.postgres import PostgresUsers, is_outage
from users.adapters.redis_cache import RedisProfileCache, dump, profile_key
from users.adapters.redis_cache import is_outage as is_redis_outage
from users.domain import DatabaseUnavailable, User, UsernameTaken


class FakeConnection:
    def __init__(self, result) -> None:
        self.result = result

    def execute(self, _query, _params=None):
        if isinstance(self.result, BaseException):
            raise self.result
        return self

    def cursor(self, row_factory=None):
        return self

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
    breaker = Breaker(f"postgres-test-{time.monotonic_ns()}", fail_max=fail_max,
                      reset_timeout=reset_timeout, exclude=[lambda exc: not is_outage(exc)],
                      ignore=[DeadlineExceeded])
    return PostgresUsers(pool, "test.follows.v1", breaker=breaker)


@contextmanager
def deadline(seconds: float):
    token = resilience.start_deadline(None, seconds)
    try:
        yield
    finally:
        resilience.end_deadline(token)


def test_outages_are_told_apart_from_statements_postgres_refused():
    assert is_outage(psycopg.OperationalError("connection refused"))
    assert is_outage(PoolTimeout("no connection in 2 s"))
    assert is_outage(errors.QueryCanceled("statement timeout"))
    assert not is_outage(errors.UniqueViolation("taken"))
    assert not is_outage(errors.DeadlockDetected("deadlock"))
    assert not is_outage(ValueError("a bug"))


def test_a_failing_database_is_a_503_and_opens_the_breaker_after_fail_max():
    pool = FakePool(refuse=psycopg.OperationalError("connection refused"))
    users = repo(pool, fail_max=3)
    for attempt in range(1, 4):
        with pytest.raises(DatabaseUnavailable) as exc:
            users.by_id(1)
        # The third failure opens the breaker: from then on, retry when it half-opens.
        assert exc.value.headers == {"Retry-After": "1" if attempt < 3 else "30"}
    assert users.breaker.is_open and users.down_for() == 30
    tried = len(pool.waits)
    started = time.perf_counter()
    with pytest.raises(DatabaseUnavailable) as exc:
        users.by_id(1)
    elapsed = time.perf_counter() - started
    assert len(pool.waits) == tried, "an open breaker must not touch the pool"
    assert exc.value.headers == {"Retry-After": "30"}
    assert elapsed < 0.01


def test_a_refused_statement_does_not_count_against_the_database():
    violation = errors.UniqueViolation("duplicate key")
    users = repo(FakePool(result=violation), fail_max=1)
    with pytest.raises(errors.UniqueViolation):
        users.by_id(1)
    assert not users.breaker.is_open and users.down_for() == 0


def test_a_unique_username_violation_is_still_a_409():
    class Taken(errors.UniqueViolation):
        class diag:  # noqa: N801 - mimics psycopg's Diagnostic
            constraint_name = "users_username_key"

    users = repo(FakePool(result=Taken("duplicate key")), fail_max=1)
    with pytest.raises(UsernameTaken):
        users.add(1, "alice", "Alice", "hash")
    assert not users.breaker.is_open


def test_the_breaker_closes_again_after_a_successful_trial():
    pool = FakePool(refuse=psycopg.OperationalError("down"))
    users = repo(pool, fail_max=1, reset_timeout=0.05)
    with pytest.raises(DatabaseUnavailable):
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


def test_redis_outages_are_told_apart_from_refused_commands():
    assert is_redis_outage(redis.ConnectionError()) and is_redis_outage(redis.TimeoutError())
    assert not is_redis_outage(redis.ResponseError("WRONGTYPE"))


def test_a_down_cache_is_a_miss_and_once_its_breaker_opens_redis_is_skipped():
    client = DownRedis()
    breaker = Breaker(f"redis-test-{time.monotonic_ns()}", fail_max=2, reset_timeout=30,
                      exclude=[lambda exc: not is_redis_outage(exc)])
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

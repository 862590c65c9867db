"""The timeline's guarded calls: breakers, deadline-bounded retries, and the users client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
import redis
import requests
from cassandra import InvalidRequest, OperationTimedOut, Unavailable
from cassandra.cluster import NoHostAvailable
from redis._parsers.base import BaseParser

from common.client import peer_breaker
from common import resilience
from timeline import bootstrap
from timeline import config as timeline_config
from timeline.adapters import cassandra_store, redis_store, users_client
from timeline.adapters.guard import Guard, outage_breaker
from timeline.domain.errors import DependencyUnavailable


class Down(Exception):
    """An outage of a fake dependency."""


def is_down(exc: BaseException) -> bool:
    return isinstance(exc, Down)


def fresh_breaker(fail_max: int = 3, reset_timeout: float = 60.0) -> resilience.Breaker:
    return outage_breaker(f"test-{uuid.uuid4().hex[:8]}", is_down, fail_max=fail_max,
                          reset_timeout=reset_timeout)


def failing(exc: BaseException):
    def call():
        raise exc
    return call


def test_transient_failures_open_the_breaker_and_then_fail_fast():
    guard = Guard("store", is_down, fresh_breaker(fail_max=3))
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            guard.call(failing(Down("timeout")))
    calls = []
    started = time.perf_counter()
    with pytest.raises(DependencyUnavailable) as caught:
        guard.call(lambda: calls.append(1))
    assert time.perf_counter() - started < 0.01
    assert calls == []  # refused without being tried
    assert 55 <= caught.value.retry_in <= 60


def test_errors_that_are_answers_never_open_the_breaker():
    breaker = fresh_breaker(fail_max=2)
    guard = Guard("store", is_down, breaker)
    for _ in range(5):
        with pytest.raises(KeyError):
            guard.call(failing(KeyError("not found")))
    assert not breaker.is_open


def test_a_passed_deadline_neither_opens_nor_closes_the_breaker():
    breaker = fresh_breaker(fail_max=2)
    guard = Guard("store", is_down, breaker)
    with pytest.raises(DependencyUnavailable):
        guard.call(failing(Down("slow")))
    for _ in range(3):
        with pytest.raises(resilience.DeadlineExceeded):
            guard.call(failing(resilience.DeadlineExceeded("late")))
    with pytest.raises(DependencyUnavailable):
        guard.call(failing(Down("slow")))
    assert breaker.is_open  # the two real failures still counted as consecutive


def test_a_half_open_trial_that_succeeds_closes_the_breaker():
    breaker = fresh_breaker(fail_max=1, reset_timeout=0.05)
    guard = Guard("store", is_down, breaker)
    with pytest.raises(DependencyUnavailable):
        guard.call(failing(Down("slow")))
    assert breaker.is_open
    deadline = time.monotonic() + 5
    while breaker.time_to_trial() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert guard.call(lambda: "ok") == "ok"
    assert breaker.current_state == "closed"


def test_reads_are_retried_on_transient_errors_and_counted():
    guard = Guard("store", is_down, fresh_breaker(), read_attempts=3)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise Down("blip")
        return "rows"

    before = resilience.RETRIES.labels("store", "read")._value.get()
    assert guard.read("read", flaky) == "rows"
    assert len(attempts) == 3
    assert resilience.RETRIES.labels("store", "read")._value.get() == before + 2


def test_reads_are_not_retried_past_the_deadline():
    guard = Guard("store", is_down, fresh_breaker(fail_max=100), read_attempts=50)
    attempts = []

    def slow_failure():
        attempts.append(1)
        time.sleep(0.02)
        raise Down("timeout")

    token = resilience.start_deadline(None, 0.1)
    try:
        started = time.perf_counter()
        with pytest.raises((DependencyUnavailable, resilience.DeadlineExceeded)):
            guard.read("read", slow_failure)
        assert time.perf_counter() - started < 0.5
    finally:
        resilience.end_deadline(token)
    assert 1 <= len(attempts) < 50


def test_reads_are_retried_only_on_the_chosen_errors():
    class TooSlow(Down):
        pass

    guard = Guard("store", is_down, fresh_breaker(), read_attempts=3,
                  retry_on=lambda exc: isinstance(exc, ConnectionError))
    attempts = []

    def slow():
        attempts.append(1)
        raise TooSlow("our own timeout")

    with pytest.raises(DependencyUnavailable):
        guard.read("read", slow)
    assert attempts == [1]


def test_other_errors_are_not_retried():
    guard = Guard("store", is_down, fresh_breaker(), read_attempts=3)
    attempts = []

    def bug():
        attempts.append(1)
        raise ValueError("bad query")

    with pytest.raises(ValueError):
        guard.read("read", bug)
    assert attempts == [1]


def test_a_guard_takes_a_kind_of_store_or_a_test_never_a_tuple_of_classes():
    assert Guard("store", "redis").is_outage(redis.TimeoutError("slow"))
    assert Guard("store", is_down).is_outage(Down())
    for wrong in [(Down,), Down]:  # a class is callable, and an instance of it is "true"
        with pytest.raises(TypeError):
            Guard("store", wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown kind of store 'mongo'"):
        Guard("store", "mongo")  # type: ignore[arg-type]


# ------------------------------------------------------------------- the process's guards


def redis_reply(message: str) -> redis.RedisError:
    """The exception redis-py raises for an error reply `message` from the server."""
    return BaseParser.__new__(BaseParser).parse_error(message)


class FailingRedis:
    """A redis-py client whose MGET fails with `exc`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc, self.calls = exc, 0

    def mget(self, keys):
        self.calls += 1
        raise self.exc


@pytest.fixture
def breakers() -> dict[str, resilience.Breaker]:
    """The breakers the timeline's bootstrap makes (fail_max 5 for each, by default)."""
    cfg = timeline_config.load()
    assert cfg.redis_breaker_fail_max == cfg.cassandra_breaker_fail_max == 5
    return bootstrap.breakers(cfg)


@pytest.mark.parametrize("reply", ["OOM command not allowed when used memory > 'maxmemory'.",
                                   "BUSY Redis is busy running a script.",
                                   "MASTERDOWN Link with MASTER is down",
                                   "READONLY You can't write against a read only replica."])
def test_a_redis_that_cannot_take_commands_now_is_an_outage_and_opens_its_breaker(breakers,
                                                                                   reply):
    client = FailingRedis(redis_reply(reply))
    cache = redis_store.RedisTweetCache(client, ttl=60,
                                        guarded=redis_store.guard(breakers["redis"]))
    for _ in range(5):
        with pytest.raises(DependencyUnavailable):
            cache.get_many([1])
    assert breakers["redis"].is_open
    with pytest.raises(DependencyUnavailable, match="circuit breaker open"):
        cache.get_many([1])
    assert client.calls == 5


def test_a_wrong_redis_command_is_an_answer_not_an_outage(breakers):
    client = FailingRedis(redis_reply("WRONGTYPE Operation against a key holding the wrong "
                                      "kind of value"))
    cache = redis_store.RedisTweetCache(client, ttl=60,
                                        guarded=redis_store.guard(breakers["redis"]))
    for _ in range(6):
        with pytest.raises(redis.ResponseError):
            cache.get_many([1])
    assert not breakers["redis"].is_open and client.calls == 6


def cassandra_session(breakers, rows) -> cassandra_store.CassandraSession:
    """A session whose every statement answers `rows()` (which may raise)."""
    session = cassandra_store.CassandraSession(timeline_config.load().stores,
                                               breaker=breakers["cassandra"], read_attempts=3)
    session._rows = lambda statement, params: rows()
    return session


def failing_then(attempts: list, *errors: BaseException):
    def rows():
        attempts.append(1)
        if len(attempts) <= len(errors):
            raise errors[len(attempts) - 1]
        return ["row"]
    return rows


def test_cassandra_reads_are_retried_on_outages_but_our_own_timeout(breakers):
    attempts: list = []
    session = cassandra_session(breakers, failing_then(
        attempts, NoHostAvailable("no host", {}), Unavailable("not enough replicas")))
    assert session.read("SELECT") == ["row"] and len(attempts) == 3
    attempts.clear()
    session = cassandra_session(breakers, failing_then(attempts, OperationTimedOut("slow")))
    with pytest.raises(DependencyUnavailable, match="OperationTimedOut"):
        session.read("SELECT")
    assert attempts == [1]


def test_an_invalid_cassandra_query_is_neither_retried_nor_held_against_cassandra(breakers):
    attempts: list = []
    session = cassandra_session(breakers, failing_then(
        attempts, *[InvalidRequest("unconfigured table tweets")] * 10))
    for _ in range(6):
        with pytest.raises(InvalidRequest):
            session.read("SELECT")
    assert len(attempts) == 6 and not breakers["cassandra"].is_open


# ------------------------------------------------------------------------- users client


class FakeUsers(BaseHTTPRequestHandler):
    """Answers followee-ids from a script of statuses; records the headers it saw."""

    script: list[int] = []
    seen: list[dict[str, str]] = []
    delay: float = 0.0
    body: bytes | None = None  # instead of the usual answer, e.g. a proxy's error page

    def do_GET(self):  # noqa: N802 - http.server's naming
        FakeUsers.seen.append({"path": self.path, **dict(self.headers)})
        status = FakeUsers.script.pop(0) if FakeUsers.script else 200
        time.sleep(FakeUsers.delay)
        body = FakeUsers.body or json.dumps(
            {"ids": ["3", "5"]} if status == 200 else {"title": "x"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up (the deadline test) is expected


@pytest.fixture
def users_url() -> Iterator[str]:
    FakeUsers.script, FakeUsers.seen, FakeUsers.delay, FakeUsers.body = [], [], 0.0, None
    server = QuietServer(("127.0.0.1", 0), FakeUsers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def users(url: str, fail_max: int = 5, attempts: int = 3,
          timeout: float = 1.0) -> users_client.UsersClient:
    breaker = peer_breaker(f"users-{uuid.uuid4().hex[:8]}", fail_max=fail_max, reset_timeout=60)
    return users_client.UsersClient(url, timeout, breaker=breaker, attempts=attempts)


def test_the_users_client_sends_the_remaining_budget_downstream(users_url):
    token = resilience.start_deadline(None, 2.0)
    try:
        assert users(users_url).followee_ids(7, 0, 200) == [3, 5]
    finally:
        resilience.end_deadline(token)
    [seen] = FakeUsers.seen
    assert seen["path"] == "/internal/users/7/followee-ids?min_followers=0&limit=200"
    budget_ms = int(seen[resilience.DEADLINE_HEADER]) - time.time() * 1000
    assert 0 < budget_ms <= 2000


def test_the_users_client_retries_a_failing_get(users_url):
    FakeUsers.script = [503, 503]
    assert users(users_url).followee_ids(7, 0, 10) == [3, 5]
    assert len(FakeUsers.seen) == 3


def test_an_unknown_user_follows_nobody_and_does_not_trip_the_breaker(users_url):
    client = users(users_url, fail_max=1, attempts=1)
    FakeUsers.script = [404, 404]
    assert client.followee_ids(7, 0, 10) == []
    assert client.followee_ids(7, 0, 10) == []
    assert not client.breaker.is_open


def test_a_users_outage_opens_the_breaker_and_then_fails_fast(users_url):
    client = users(users_url, fail_max=2, attempts=1)
    FakeUsers.script = [500, 500, 200]
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            client.followee_ids(7, 0, 10)
    with pytest.raises(DependencyUnavailable):
        client.followee_ids(7, 0, 10)
    assert len(FakeUsers.seen) == 2  # the third call never left the process


def test_the_users_client_never_waits_past_the_deadline(users_url):
    FakeUsers.delay = 0.5
    client = users(users_url, attempts=3, timeout=5.0)
    token = resilience.start_deadline(None, 0.15)
    try:
        started = time.perf_counter()
        with pytest.raises((DependencyUnavailable, resilience.DeadlineExceeded)):
            client.followee_ids(7, 0, 10)
        assert time.perf_counter() - started < 0.4
    finally:
        resilience.end_deadline(token)


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b'{"users": []}',
                                  b'{"ids": ["x"]}', b'{"ids": 5}'])
def test_a_malformed_answer_from_users_is_an_outage_not_an_error(users_url, body):
    FakeUsers.body = body
    with pytest.raises(DependencyUnavailable, match="malformed"):
        users(users_url, attempts=1).followee_ids(7, 0, 10)


def test_an_unreachable_users_is_an_outage_the_home_timeline_can_degrade_on():
    client = users("http://127.0.0.1:9", attempts=2, timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(DependencyUnavailable):
        client.followee_ids(7, 2000, 10)
    assert time.perf_counter() - started < 2


def test_a_4xx_answer_from_users_never_trips_the_breaker(users_url):
    client = users(users_url, fail_max=1, attempts=1)
    FakeUsers.script = [400, 422, 409]
    for _ in range(3):
        with pytest.raises(DependencyUnavailable, match="answered 4"):
            client.followee_ids(7, 0, 10)
    assert not client.breaker.is_open


def test_the_celebrity_cache_falls_through_to_users_while_redis_cannot_take_writes():
    class ReadOnlyRedis:
        def get(self, name):
            return None

        def set(self, *args, **kwargs):
            raise redis_reply("READONLY You can't write against a read only replica.")

    class Users:
        def followee_ids(self, user_id, min_followers, limit, pulled=False):
            return [3, 5]

    cached = users_client.CachedCelebrityFollowees(Users(), ReadOnlyRedis(), threshold=1000,
                                                   ttl=60, limit=10)
    assert cached.celebrities(7) == [3, 5]

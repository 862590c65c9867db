"""The timeline's guarded calls: breakers, deadline-bounded retries, and the users client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from common import resilience
from timeline.adapters import users_client
from timeline.adapters.guard import Guard, transient_breaker
from timeline.domain import DependencyUnavailable


class Down(Exception):
    """A transient failure of a fake dependency."""


def fresh_breaker(fail_max: int = 3, reset_timeout: float = 60.0) -> resilience.Breaker:
    return transient_breaker(f"test-{uuid.uuid4().hex[:8]}", (Down,), fail_max=fail_max,
                             reset_timeout=reset_timeout)


def failing(exc: BaseException):
    def call():
        raise exc
    return call


def test_transient_failures_open_the_breaker_and_then_fail_fast():
    guard = Guard("store", (Down,), fresh_breaker(fail_max=3))
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            guard.call(failing(Down("timeout")))
    calls = []
    started = time.perf_counter()
    with pytest.raises(DependencyUnavailable) as caught:
        guard.call(lambda: calls.append(1))
    assert time.perf_counter() - started < 0.01
    assert calls == []  # refused without being tried
    assert 55 <= caught.value.retry_after <= 60


def test_errors_that_are_answers_never_open_the_breaker():
    breaker = fresh_breaker(fail_max=2)
    guard = Guard("store", (Down,), breaker)
    for _ in range(5):
        with pytest.raises(KeyError):
            guard.call(failing(KeyError("not found")))
    assert not breaker.is_open


def test_a_passed_deadline_neither_opens_nor_closes_the_breaker():
    breaker = fresh_breaker(fail_max=2)
    guard = Guard("store", (Down,), breaker)
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
    guard = Guard("store", (Down,), breaker)
    with pytest.raises(DependencyUnavailable):
        guard.call(failing(Down("slow")))
    assert breaker.is_open
    deadline = time.monotonic() + 5
    while breaker.time_to_trial() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert guard.call(lambda: "ok") == "ok"
    assert breaker.current_state == "closed"


def test_reads_are_retried_on_transient_errors_and_counted():
    guard = Guard("store", (Down,), fresh_breaker(), read_attempts=3)
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
    guard = Guard("store", (Down,), fresh_breaker(fail_max=100), read_attempts=50)
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

    guard = Guard("store", (Down,), fresh_breaker(), read_attempts=3, retry_on=(ConnectionError,))
    attempts = []

    def slow():
        attempts.append(1)
        raise TooSlow("our own timeout")

    with pytest.raises(DependencyUnavailable):
        guard.read("read", slow)
    assert attempts == [1]


def test_other_errors_are_not_retried():
    guard = Guard("store", (Down,), fresh_breaker(), read_attempts=3)
    attempts = []

    def bug():
        attempts.append(1)
        raise ValueError("bad query")

    with pytest.raises(ValueError):
        guard.read("read", bug)
    assert attempts == [1]


# ------------------------------------------------------------------------- users client


class FakeUsers(BaseHTTPRequestHandler):
    """Answers followee-ids from a script of statuses; records the headers it saw."""

    script: list[int] = []
    seen: list[dict[str, str]] = []
    delay: float = 0.0

    def do_GET(self):  # noqa: N802 - http.server's naming
        FakeUsers.seen.append({"path": self.path, **dict(self.headers)})
        status = FakeUsers.script.pop(0) if FakeUsers.script else 200
        time.sleep(FakeUsers.delay)
        body = json.dumps({"ids": ["3", "5"]} if status == 200 else {"title": "x"}).encode()
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
    FakeUsers.script, FakeUsers.seen, FakeUsers.delay = [], [], 0.0
    server = QuietServer(("127.0.0.1", 0), FakeUsers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def users(url: str, fail_max: int = 5, attempts: int = 3,
          timeout: float = 1.0) -> users_client.UsersClient:
    breaker = transient_breaker(f"users-{uuid.uuid4().hex[:8]}", users_client.TRANSIENT,
                                fail_max=fail_max, reset_timeout=60)
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
    assert not client.guard.breaker.is_open


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

"""How the gateway calls a downstream and translates its answers and failures, on the wire,
and how its breaker, retries, deadline and bulkhead behave.

Each test talks to a small HTTP server in a thread that answers as it is told and records
what it received, so headers, bodies, timeouts, pooling and retries are proven over a real
socket.
"""

from __future__ import annotations

import json
import logging
import socket
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from common import logs, resilience
from common.problems import Problem
from conftest import wait_until
from gateway.config import DownstreamConfig
from gateway.downstream import Downstream

TIMEOUT = 0.2  # connect and read budget of the client under test, in seconds


@dataclass
class Received:
    """One request as the fake service saw it."""

    method: str
    path: str
    headers: Any
    body: bytes


@dataclass
class Answer:
    """What the fake service answers; `hang` means it stays silent until the test ends."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class FakeService(ThreadingHTTPServer):
    """A downstream that answers every request with `answer` and records it in `received`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = Answer()
        self.script: list[Answer] = []  # answers to the first requests, before `answer`
        self.received: list[Received] = []
        self.released = threading.Event()

    @property
    def url(self) -> str:
        """Base URL of this service."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services speak
    server: FakeService

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received.append(
            Received(self.command, self.path, self.headers, self.rfile.read(length)))
        answer = self.server.script.pop(0) if self.server.script else self.server.answer
        if answer.hang:
            self.server.released.wait(10)
            self.close_connection = True
            return
        payload = json.dumps(answer.body).encode() if answer.body is not None else b""
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


@pytest.fixture
def service() -> Iterator[FakeService]:
    server = FakeService()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def connect() -> Iterator[Callable[..., Downstream]]:
    """Build a Downstream to a base URL; its pool is closed after the test."""
    made: list[Downstream] = []

    def make(url: str, *, read: float = TIMEOUT, pool_size: int = 4,
             **resilience_settings: Any) -> Downstream:
        """`resilience_settings`: DownstreamConfig's breaker and retry fields."""
        resilience_settings.setdefault("retry_base", 0.001)  # keep retried tests quick
        made.append(Downstream(DownstreamConfig("users", url, TIMEOUT, read, pool_size,
                                                **resilience_settings), retry_after=2))
        return made[-1]

    yield make
    for downstream in made:
        downstream.close()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting is refused."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port whose listener never accepts: with its queue full, a connect hangs."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    while len(fillers) < 64:
        filler = socket.socket()
        filler.settimeout(0.05)
        fillers.append(filler)
        try:
            filler.connect(("127.0.0.1", port))
        except TimeoutError:
            break  # the queue is full: the next connect hangs as well
    else:
        raise AssertionError("the listener's queue never filled")
    yield port
    for sock in fillers:
        sock.close()
    listener.close()


def calls(outcome: str, method: str = "GET") -> float:
    """How many downstream calls the metric counted with this outcome."""
    return REGISTRY.get_sample_value("murmur_downstream_request_duration_seconds_count", {
        "downstream": "users", "method": method, "outcome": outcome}) or 0.0


def unavailable(call: Callable[[], object]) -> Problem:
    """The Problem `call` raises, checked to be 503 with the configured Retry-After."""
    with pytest.raises(Problem) as caught:
        call()
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "2"
    return caught.value


def test_a_success_returns_the_body_and_headers(service, connect) -> None:
    service.answer = Answer(200, {"id": "1"}, {"ETag": '"1"'})
    before = calls("200")
    reply = connect(service.url).call("GET", "/users/ada")
    assert reply.status == 200
    assert reply.body == {"id": "1"}
    assert reply.passed_headers() == {"ETag": '"1"'}
    assert reply.headers["etag"] == '"1"'
    assert calls("200") == before + 1


def test_an_empty_success_has_no_body(service, connect) -> None:
    service.answer = Answer(204)
    assert connect(service.url).call("DELETE", "/users/1/following/ada").body is None


def test_identity_request_id_and_headers_travel_downstream(service, connect) -> None:
    token = logs.request_id_var.set("rid-1")
    try:
        connect(service.url).call("GET", "/users/ada", user_id="42",
                                  headers={"If-Match": '"3"', "Idempotency-Key": None})
    finally:
        logs.request_id_var.reset(token)
    sent = service.received[0].headers
    assert sent["X-User-Id"] == "42"
    assert sent["X-Request-ID"] == "rid-1"
    assert sent["If-Match"] == '"3"'
    assert sent["Accept"] == "application/json"
    assert "Idempotency-Key" not in sent


def test_params_are_encoded_and_none_values_dropped(service, connect) -> None:
    connect(service.url).call("GET", "/users/ada/followers",
                              params={"limit": 20, "cursor": None, "q": "a b&c"})
    assert service.received[0].path == "/users/ada/followers?limit=20&q=a+b%26c"


def test_a_json_body_is_sent_as_json(service, connect) -> None:
    connect(service.url).call("POST", "/internal/users/batch", json={"ids": ["1", "é"]})
    received = service.received[0]
    assert received.method == "POST"
    assert received.headers["Content-Type"] == "application/json"
    assert json.loads(received.body) == {"ids": ["1", "é"]}


def test_a_base_url_path_prefixes_every_call(service, connect) -> None:
    connect(service.url + "/users-api/").call("GET", "/users/ada")
    assert service.received[0].path == "/users-api/users/ada"


def test_a_downstream_4xx_problem_passes_through_unchanged(service, connect) -> None:
    body = {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": "bad", "errors": [{"field": "cursor", "message": "bad cursor"}]}
    service.answer = Answer(422, body)
    with pytest.raises(Problem) as caught:
        connect(service.url).call("GET", "/users/ada")
    assert caught.value.to_dict() == body


def test_a_downstream_4xx_keeps_the_headers_a_client_should_see(service, connect) -> None:
    service.answer = Answer(412, {"status": 412, "title": "Precondition Failed"},
                            {"ETag": '"4"', "Server-Timing": "db;dur=1"})
    with pytest.raises(Problem) as caught:
        connect(service.url).call("PATCH", "/users/1", json={})
    assert caught.value.headers == {"ETag": '"4"'}


def test_a_4xx_without_a_problem_body_keeps_its_status(service, connect) -> None:
    service.answer = Answer(404)
    with pytest.raises(Problem) as caught:
        connect(service.url).call("GET", "/users/ada")
    assert caught.value.status == 404


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_downstream_5xx_becomes_503_with_retry_after(service, connect, status) -> None:
    service.answer = Answer(status, {"detail": "internal details"})
    before = calls(str(status))
    problem = unavailable(lambda: connect(service.url).call("GET", "/users/ada",
                                                            idempotent=False))
    assert "internal details" not in problem.detail
    assert len(service.received) == 1
    assert calls(str(status)) == before + 1


def test_a_redirect_is_not_followed(service, connect) -> None:
    service.answer = Answer(307, headers={"Location": "/elsewhere"})
    assert connect(service.url).call("GET", "/users/ada").status == 307
    assert [r.path for r in service.received] == ["/users/ada"]


def test_a_downstream_that_does_not_answer_in_time_becomes_503(
        service, connect, caplog) -> None:
    service.answer = Answer(hang=True)
    before = calls("timeout")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="murmur.gateway.downstream"):
        unavailable(lambda: connect(service.url).call("GET", "/users/ada", idempotent=False))
    assert time.monotonic() - started < 5  # the server holds out for 10 s
    assert calls("timeout") == before + 1
    assert "did not answer in time" in caplog.text


def test_a_connect_that_hangs_becomes_503(silent_port, connect) -> None:
    before = calls("timeout")
    unavailable(lambda: connect(f"http://127.0.0.1:{silent_port}").call(
        "GET", "/users/ada", idempotent=False))
    assert calls("timeout") == before + 1


def test_a_refused_connection_becomes_503(closed_port, connect) -> None:
    before = calls("error")
    unavailable(lambda: connect(f"http://127.0.0.1:{closed_port}").call(
        "GET", "/users/ada", idempotent=False))
    assert calls("error") == before + 1


def test_a_degraded_answer_passes_its_marker_on(service, connect) -> None:
    service.answer = Answer(200, {"items": []}, {"Murmur-Degraded": "home-cache"})
    reply = connect(service.url).call("GET", "/timeline")
    assert reply.passed_headers() == {"Murmur-Degraded": "home-cache"}


# ------------------------------------------------------------------ bulkhead (the pool)


def pool_gauge(name: str) -> float:
    """`murmur_pool_in_use` or `murmur_pool_size` of the users downstream."""
    return REGISTRY.get_sample_value(f"murmur_pool_{name}", {"dependency": "users"}) or 0.0


def test_a_saturated_pool_is_a_bounded_wait_not_another_socket(service, connect) -> None:
    service.answer = Answer(hang=True)
    downstream = connect(service.url, read=10.0, pool_size=1, fail_max=1)
    first: list[int] = []

    def hold_the_only_connection() -> None:
        try:
            downstream.call("GET", "/users/slow", idempotent=False)
        except Problem as problem:
            first.append(problem.status)

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    wait_until(lambda: service.received, message="the first call reaching the service")
    assert (pool_gauge("in_use"), pool_gauge("size")) == (1, 1)  # saturated
    started = time.monotonic()
    unavailable(lambda: downstream.call("GET", "/users/ada"))
    assert time.monotonic() - started < 5  # the first call holds its connection for 10 s
    # Not retried, and not held against the service: the full pool is this process's own.
    assert [r.path for r in service.received] == ["/users/slow"]
    assert not downstream.breaker.is_open and downstream.breaker.fail_counter == 0
    service.released.set()
    holder.join(5)
    assert first == [503]  # released without an answer, the first call fails as well
    assert pool_gauge("in_use") == 0


# ---------------------------------------------------------------------------- breaker


def refused(call: Callable[[], object]) -> tuple[Problem, float]:
    """The 503 Problem `call` raises and how long raising it took, in seconds."""
    started = time.perf_counter()
    with pytest.raises(Problem) as caught:
        call()
    elapsed = time.perf_counter() - started
    assert caught.value.status == 503
    return caught.value, elapsed


def test_the_breaker_opens_after_its_threshold_and_then_answers_without_the_network(
        service, connect) -> None:
    service.answer = Answer(500)
    downstream = connect(service.url, fail_max=3, reset_timeout=60, retry_attempts=1)
    for _ in range(2):
        unavailable(lambda: downstream.call("GET", "/users/ada"))
    refused(lambda: downstream.call("GET", "/users/ada"))  # the third failure trips it
    assert downstream.breaker.is_open
    answers = [refused(lambda: downstream.call("GET", "/users/ada")) for _ in range(20)]
    assert len(service.received) == 3  # no call after the third reached the service
    assert statistics.median(elapsed for _, elapsed in answers) < 0.01
    problem = answers[-1][0]
    # Come back once the breaker will try the service again, not sooner.
    assert 55 <= int(problem.headers["Retry-After"]) <= 60


def test_4xx_answers_never_open_the_breaker(service, connect) -> None:
    service.answer = Answer(404, {"status": 404, "title": "Not Found"})
    downstream = connect(service.url, fail_max=2)
    for _ in range(5):
        with pytest.raises(Problem) as caught:
            downstream.call("GET", "/users/ghost")
        assert caught.value.status == 404
    assert len(service.received) == 5
    assert not downstream.breaker.is_open


def test_timeouts_and_refused_connections_open_the_breaker(service, closed_port, connect) -> None:
    service.answer = Answer(hang=True)
    slow = connect(service.url, read=0.05, fail_max=2, retry_attempts=1)
    down = connect(f"http://127.0.0.1:{closed_port}", fail_max=2, retry_attempts=1)
    for downstream in (slow, down):
        for _ in range(2):
            with pytest.raises(Problem):
                downstream.call("GET", "/users/ada")
        assert downstream.breaker.is_open


def test_a_successful_trial_after_the_reset_timeout_closes_the_breaker(service, connect) -> None:
    service.answer = Answer(500)
    downstream = connect(service.url, fail_max=1, reset_timeout=0.05, retry_attempts=1)
    unavailable(lambda: downstream.call("GET", "/users/ada"))
    assert downstream.breaker.is_open
    service.answer = Answer(200, {"id": "1"})

    def answered() -> bool:
        try:
            return downstream.call("GET", "/users/ada").status == 200
        except Problem:
            return False

    wait_until(answered, message="a trial call closing the breaker")
    assert downstream.breaker.current_state == "closed"


def test_retries_stop_at_an_open_breaker(service, connect) -> None:
    service.answer = Answer(503)
    downstream = connect(service.url, fail_max=2, reset_timeout=60, retry_attempts=5)
    before = retries("GET")
    problem, _ = refused(lambda: downstream.call("GET", "/users/ada"))
    # The second failure opened the breaker; the three tries left were never made.
    assert len(service.received) == 2
    assert retries("GET") == before + 1
    assert int(problem.headers["Retry-After"]) >= 55


# ---------------------------------------------------------------------------- retries


def retries(operation: str) -> float:
    """Retries counted against the users downstream for `operation` (the method)."""
    return REGISTRY.get_sample_value("murmur_retries_total", {
        "dependency": "users", "operation": operation}) or 0.0


def test_an_idempotent_call_is_retried_until_it_succeeds(service, connect) -> None:
    service.script = [Answer(503), Answer(500)]
    service.answer = Answer(200, {"id": "1"})
    before = retries("GET")
    reply = connect(service.url).call("GET", "/users/ada")
    assert reply.body == {"id": "1"}
    assert len(service.received) == 3
    assert retries("GET") == before + 2


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_methods_are_tried_at_most_the_configured_times(
        service, connect, method) -> None:
    service.answer = Answer(502)
    before = retries(method)
    unavailable(lambda: connect(service.url, retry_attempts=4).call(method, "/users/1/x"))
    assert [r.method for r in service.received] == [method] * 4
    assert retries(method) == before + 3


def test_a_post_marked_idempotent_is_retried(service, connect) -> None:
    service.script = [Answer(503)]
    service.answer = Answer(201, {"id": "9"})
    before = retries("POST")
    reply = connect(service.url).call("POST", "/tweets", json={"text": "hi"},
                                      headers={"Idempotency-Key": "k1"}, idempotent=True)
    assert reply.status == 201
    assert [r.headers["Idempotency-Key"] for r in service.received] == ["k1", "k1"]
    assert retries("POST") == before + 1


@pytest.mark.parametrize("method,path", [("POST", "/users"), ("POST", "/sessions"),
                                         ("POST", "/tweets"), ("PATCH", "/users/1")])
def test_a_call_that_is_not_idempotent_is_tried_once(service, connect, method, path) -> None:
    service.answer = Answer(503)
    before = retries(method)
    unavailable(lambda: connect(service.url).call(method, path, json={}))
    assert len(service.received) == 1
    assert retries(method) == before


def test_a_4xx_is_not_retried(service, connect) -> None:
    service.answer = Answer(409, {"status": 409, "title": "Conflict"})
    with pytest.raises(Problem) as caught:
        connect(service.url).call("PUT", "/users/1/following/ada")
    assert caught.value.status == 409
    assert len(service.received) == 1


def test_timeouts_and_refused_connections_are_retried(service, closed_port, connect) -> None:
    service.answer = Answer(hang=True)
    unavailable(lambda: connect(service.url, read=0.05, retry_attempts=2).call("GET", "/x"))
    assert len(service.received) == 2
    before = calls("error")
    unavailable(lambda: connect(f"http://127.0.0.1:{closed_port}").call("GET", "/x"))
    assert calls("error") == before + 3


# -------------------------------------------------------------------------- deadlines


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Run the block as a request with `seconds` of budget left (negative: already passed)."""
    token = resilience.start_deadline(None, seconds)
    try:
        yield
    finally:
        resilience.end_deadline(token)


def test_every_try_carries_the_remaining_budget_downstream(service, connect) -> None:
    service.script = [Answer(503)]
    started_ms = time.time() * 1000
    with deadline_in(2.0):
        connect(service.url).call("GET", "/users/ada")
    sent = [int(r.headers["Murmur-Deadline"]) for r in service.received]
    assert len(sent) == 2
    for deadline_ms in sent:
        assert started_ms + 1500 < deadline_ms <= time.time() * 1000 + 2000


def test_without_a_deadline_no_budget_is_sent(service, connect) -> None:
    connect(service.url).call("GET", "/users/ada")
    assert "Murmur-Deadline" not in service.received[0].headers


def test_a_passed_deadline_answers_503_without_calling(service, connect) -> None:
    downstream = connect(service.url)
    before = calls("200")
    with deadline_in(-1.0):
        problem = unavailable(lambda: downstream.call("GET", "/users/ada"))
    assert "time budget" in problem.detail
    assert service.received == []
    assert calls("200") == before
    assert downstream.breaker.fail_counter == 0


def test_the_read_timeout_is_cut_to_the_remaining_budget(service, connect) -> None:
    service.answer = Answer(hang=True)
    downstream = connect(service.url, read=10.0, fail_max=1)
    started = time.monotonic()
    with deadline_in(0.3):
        problem = unavailable(lambda: downstream.call("GET", "/users/ada"))
    assert time.monotonic() - started < 3  # the read budget alone would be 10 s
    assert "time budget" in problem.detail
    # Running out of the caller's time is not the service failing, and leaves nothing to retry.
    assert len(service.received) == 1
    assert not downstream.breaker.is_open and downstream.breaker.fail_counter == 0


def test_a_trial_cut_short_by_the_deadline_leaves_the_breaker_half_open(
        service, connect) -> None:
    service.answer = Answer(500)
    downstream = connect(service.url, read=10.0, fail_max=1, reset_timeout=0.05)
    refused(lambda: downstream.call("GET", "/users/ada"))
    wait_until(lambda: downstream.breaker.time_to_trial() == 0, message="the reset timeout")
    service.answer = Answer(hang=True)
    with deadline_in(0.2):
        unavailable(lambda: downstream.call("GET", "/users/ada"))
    # The trial proved nothing either way: the next call is the trial again.
    assert downstream.breaker.current_state == "half-open"
    service.released.set()
    service.answer = Answer(200, {"id": "1"})
    assert downstream.call("GET", "/users/ada").status == 200
    assert downstream.breaker.current_state == "closed"


def test_retries_end_when_the_budget_does(service, connect) -> None:
    service.answer = Answer(hang=True)
    downstream = connect(service.url, read=0.2, retry_attempts=10)
    started = time.monotonic()
    with deadline_in(0.3):
        unavailable(lambda: downstream.call("GET", "/users/ada"))
    # A full 0.2 s try, then a second one cut to the 0.1 s left; no third.
    assert time.monotonic() - started < 3
    assert len(service.received) == 2
    assert downstream.breaker.fail_counter == 1

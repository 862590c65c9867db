"""The one HTTP client between Murmur's services (common.client), on the wire: what it
sends, how it sorts answers and failures into its error taxonomy, and how its breaker,
retries, deadline and bulkhead behave.

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
from typing import Any, Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from common import logs, resilience
from common.client import (
    BadAnswer, BreakerOpen, HttpClient, OutOfTime, PeerConfig, PeerError, PeerUnavailable,
    Rejected, Saturated, Unanswered,
)
from conftest import wait_until
from unit._fake_peer import Answer, FakeService, running_service

TIMEOUT = 0.2  # connect and read budget of the client under test, in seconds


@pytest.fixture
def service() -> Iterator[FakeService]:
    with running_service() as server:
        yield server


@pytest.fixture
def connect() -> Iterator[Callable[..., HttpClient]]:
    """Build a client of a base URL; its pool is closed after the test."""
    made: list[HttpClient] = []

    def make(url: str, *, read: float = TIMEOUT, pool_size: int = 4,
             **resilience_settings: Any) -> HttpClient:
        """`resilience_settings`: PeerConfig's breaker and retry fields."""
        resilience_settings.setdefault("retry_base", 0.001)  # keep retried tests quick
        made.append(HttpClient(PeerConfig("users", url, TIMEOUT, read, pool_size,
                                          **resilience_settings)))
        return made[-1]

    yield make
    for client in made:
        client.close()


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
    """How many calls to the users peer the metric counted with this outcome."""
    return REGISTRY.get_sample_value("murmur_downstream_request_duration_seconds_count", {
        "downstream": "users", "method": method, "outcome": outcome}) or 0.0


def fails(kind: type[PeerError], call: Callable[[], object]) -> PeerError:
    """The error `call` raises, checked to be exactly of `kind`."""
    with pytest.raises(PeerError) as caught:
        call()
    assert type(caught.value) is kind, repr(caught.value)
    assert caught.value.peer == "users"
    return caught.value


def test_the_taxonomy_sorts_no_answer_apart_from_an_answer() -> None:
    for kind in (Unanswered, BreakerOpen, OutOfTime, Saturated):
        assert issubclass(kind, PeerUnavailable)
    for kind in (Rejected, BadAnswer):
        assert not issubclass(kind, PeerUnavailable) and issubclass(kind, PeerError)


def test_a_success_returns_the_body_and_headers(service, connect) -> None:
    service.answer = Answer(200, {"id": "1"}, {"ETag": '"1"'})
    before = calls("200")
    reply = connect(service.url).call("GET", "/users/ada")
    assert reply.status == 200
    assert reply.body == {"id": "1"} == reply.object()
    assert reply.headers["etag"] == '"1"'
    assert calls("200") == before + 1


def test_an_empty_success_has_no_body(service, connect) -> None:
    service.answer = Answer(204)
    assert connect(service.url).call("DELETE", "/users/1/following/ada").body is None


def test_request_id_and_headers_travel_downstream(service, connect) -> None:
    token = logs.request_id_var.set("rid-1")
    try:
        connect(service.url).call("GET", "/users/ada",
                                  headers={"X-User-Id": "42", "If-Match": '"3"',
                                           "Idempotency-Key": None})
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


def test_a_4xx_is_rejected_with_its_problem_and_headers(service, connect) -> None:
    body = {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": "bad", "errors": [{"field": "cursor", "message": "bad cursor"}]}
    service.answer = Answer(422, body, {"ETag": '"4"'})
    rejected = fails(Rejected, lambda: connect(service.url).call("GET", "/users/ada"))
    assert rejected.status == 422 and not rejected.transient
    assert rejected.problem == body
    assert rejected.headers["ETag"] == '"4"'


def test_a_4xx_without_a_problem_body_keeps_its_status(service, connect) -> None:
    service.answer = Answer(404)
    rejected = fails(Rejected, lambda: connect(service.url).call("GET", "/users/ada"))
    assert rejected.status == 404 and rejected.problem == {}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_unanswered(service, connect, status) -> None:
    service.answer = Answer(status, {"detail": "internal details"})
    before = calls(str(status))
    fails(Unanswered, lambda: connect(service.url).call("GET", "/users/ada", idempotent=False))
    assert len(service.received) == 1
    assert calls(str(status)) == before + 1


def test_a_redirect_is_not_followed(service, connect) -> None:
    service.answer = Answer(307, headers={"Location": "/elsewhere"})
    assert connect(service.url).call("GET", "/users/ada").status == 307
    assert [r.path for r in service.received] == ["/users/ada"]


def test_a_peer_that_does_not_answer_in_time_is_unanswered(service, connect, caplog) -> None:
    service.answer = Answer(hang=True)
    before = calls("timeout")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="murmur.client"):
        fails(Unanswered, lambda: connect(service.url).call("GET", "/users/ada",
                                                            idempotent=False))
    assert time.monotonic() - started < 5  # the server holds out for 10 s
    assert calls("timeout") == before + 1
    assert "did not answer in time" in caplog.text


def test_a_connect_that_hangs_is_unanswered(silent_port, connect) -> None:
    before = calls("timeout")
    fails(Unanswered, lambda: connect(f"http://127.0.0.1:{silent_port}").call(
        "GET", "/users/ada", idempotent=False))
    assert calls("timeout") == before + 1


def test_a_refused_connection_is_unanswered(closed_port, connect) -> None:
    before = calls("error")
    fails(Unanswered, lambda: connect(f"http://127.0.0.1:{closed_port}").call(
        "GET", "/users/ada", idempotent=False))
    assert calls("error") == before + 1


# ------------------------------------------------------------ answers that are not JSON


@pytest.mark.parametrize("raw,content_type", [(b"<html>oops</html>", "text/html"),
                                              (b'{"ids": [1', "application/json")])
def test_an_answer_that_is_not_json_is_a_bad_answer_tried_once(
        service, connect, raw, content_type) -> None:
    service.answer = Answer(200, raw=raw, headers={"Content-Type": content_type})
    client = connect(service.url, retry_attempts=5, fail_max=1)
    for _ in range(3):
        fails(BadAnswer, lambda: client.call("GET", "/internal/users/1/follower-ids"))
    # Never retried (the same question gets the same garbage), and the peer did answer:
    # its breaker stays closed.
    assert len(service.received) == 3
    assert not client.breaker.is_open and client.breaker.fail_counter == 0


def test_json_that_is_not_an_object_is_a_bad_answer_where_an_object_is_expected(
        service, connect) -> None:
    service.answer = Answer(200, ["1", "2"])
    client = connect(service.url)
    assert client.call("GET", "/x").body == ["1", "2"]
    fails(BadAnswer, lambda: client.get_object("/x"))


def test_a_deliberate_503_is_rejected_without_tripping_or_retrying(service, connect) -> None:
    """A peer answering 503 + Retry-After (its own store is down) is healthy: an answer."""
    service.answer = Answer(503, {"status": 503, "title": "Service Unavailable",
                                  "detail": "Postgres is down."},
                            {"Retry-After": "4", "Content-Type": "application/problem+json"})
    client = connect(service.url, fail_max=2, retry_attempts=3)
    for _ in range(5):
        rejected = fails(Rejected, lambda: client.call("GET", "/users/ada"))
        assert rejected.status == 503 and rejected.transient
        assert rejected.headers["Retry-After"] == "4"
    assert len(service.received) == 5, "retried, or refused by an open breaker"
    assert not client.breaker.is_open


# ------------------------------------------------------------------ bulkhead (the pool)


def pool_gauge(name: str) -> float:
    """`murmur_pool_in_use` or `murmur_pool_size` of the users peer."""
    return REGISTRY.get_sample_value(f"murmur_pool_{name}", {"dependency": "users"}) or 0.0


def test_a_saturated_pool_is_a_bounded_wait_not_another_socket(service, connect) -> None:
    service.answer = Answer(hang=True)
    client = connect(service.url, read=10.0, pool_size=1, fail_max=1)
    first: list[type] = []

    def hold_the_only_connection() -> None:
        try:
            client.call("GET", "/users/slow", idempotent=False)
        except PeerError as exc:
            first.append(type(exc))

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    wait_until(lambda: service.received, message="the first call reaching the service")
    assert (pool_gauge("in_use"), pool_gauge("size")) == (1, 1)  # saturated
    started = time.monotonic()
    fails(Saturated, lambda: client.call("GET", "/users/ada"))
    assert time.monotonic() - started < 5  # the first call holds its connection for 10 s
    # Not retried, and not held against the peer: the full pool is this process's own.
    assert [r.path for r in service.received] == ["/users/slow"]
    assert not client.breaker.is_open and client.breaker.fail_counter == 0
    service.released.set()
    holder.join(5)
    # Released without an answer, the first call fails too: with fail_max=1 its failure
    # opens the breaker, which it reports.
    assert first == [BreakerOpen]
    assert pool_gauge("in_use") == 0


# ---------------------------------------------------------------------------- breaker


def refused(call: Callable[[], object]) -> tuple[BreakerOpen, float]:
    """The BreakerOpen `call` raises and how long raising it took, in seconds."""
    started = time.perf_counter()
    error = fails(BreakerOpen, call)
    return error, time.perf_counter() - started  # type: ignore[return-value]


def test_the_breaker_opens_after_its_threshold_and_then_answers_without_the_network(
        service, connect) -> None:
    service.answer = Answer(500)
    client = connect(service.url, fail_max=3, reset_timeout=60, retry_attempts=1)
    for _ in range(2):
        fails(Unanswered, lambda: client.call("GET", "/users/ada"))
    refused(lambda: client.call("GET", "/users/ada"))  # the third failure trips it
    assert client.breaker.is_open
    answers = [refused(lambda: client.call("GET", "/users/ada")) for _ in range(20)]
    assert len(service.received) == 3  # no call after the third reached the service
    assert statistics.median(elapsed for _, elapsed in answers) < 0.01
    # Come back once the breaker will try the peer again, not sooner.
    assert 55 <= answers[-1][0].retry_after <= 60


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422, 429])
def test_4xx_answers_never_open_the_breaker(service, connect, status) -> None:
    service.answer = Answer(status, {"status": status, "title": "No"})
    client = connect(service.url, fail_max=2)
    for _ in range(5):
        assert fails(Rejected, lambda: client.call("GET", "/users/ghost")).status == status
    assert len(service.received) == 5
    assert not client.breaker.is_open and client.breaker.fail_counter == 0


def test_timeouts_and_refused_connections_open_the_breaker(service, closed_port, connect) -> None:
    service.answer = Answer(hang=True)
    slow = connect(service.url, read=0.05, fail_max=2, retry_attempts=1)
    down = connect(f"http://127.0.0.1:{closed_port}", fail_max=2, retry_attempts=1)
    for client in (slow, down):
        for _ in range(2):
            with pytest.raises(PeerUnavailable):
                client.call("GET", "/users/ada")
        assert client.breaker.is_open


def test_a_successful_trial_after_the_reset_timeout_closes_the_breaker(service, connect) -> None:
    service.answer = Answer(500)
    client = connect(service.url, fail_max=1, reset_timeout=0.05, retry_attempts=1)
    with pytest.raises(PeerUnavailable):
        client.call("GET", "/users/ada")
    assert client.breaker.is_open
    service.answer = Answer(200, {"id": "1"})

    def answered() -> bool:
        try:
            return client.call("GET", "/users/ada").status == 200
        except PeerError:
            return False

    wait_until(answered, message="a trial call closing the breaker")
    assert client.breaker.current_state == "closed"


def test_retries_stop_at_an_open_breaker(service, connect) -> None:
    service.answer = Answer(503)
    client = connect(service.url, fail_max=2, reset_timeout=60, retry_attempts=5)
    before = retries("GET")
    error, _ = refused(lambda: client.call("GET", "/users/ada"))
    # The second failure opened the breaker; the three tries left were never made.
    assert len(service.received) == 2
    assert retries("GET") == before + 1
    assert error.retry_after >= 55


# ---------------------------------------------------------------------------- retries


def retries(operation: str) -> float:
    """Retries counted against the users peer for `operation` (the method)."""
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
    fails(Unanswered, lambda: connect(service.url, retry_attempts=4).call(method, "/users/1/x"))
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
    fails(Unanswered, lambda: connect(service.url).call(method, path, json={}))
    assert len(service.received) == 1
    assert retries(method) == before


def test_a_get_marked_not_idempotent_is_tried_once(service, connect) -> None:
    service.answer = Answer(503)
    fails(Unanswered, lambda: connect(service.url).call("GET", "/x", idempotent=False))
    assert len(service.received) == 1


def test_a_4xx_is_not_retried(service, connect) -> None:
    service.answer = Answer(409, {"status": 409, "title": "Conflict"})
    assert fails(Rejected, lambda: connect(service.url).call(
        "PUT", "/users/1/following/ada")).status == 409
    assert len(service.received) == 1


def test_timeouts_and_refused_connections_are_retried(service, closed_port, connect) -> None:
    service.answer = Answer(hang=True)
    fails(Unanswered, lambda: connect(service.url, read=0.05, retry_attempts=2).call("GET", "/x"))
    assert len(service.received) == 2
    before = calls("error")
    fails(Unanswered, lambda: connect(f"http://127.0.0.1:{closed_port}").call("GET", "/x"))
    assert calls("error") == before + 3


# -------------------------------------------------------------------------- deadlines


deadline_in = resilience.deadline  # a block run as a request with that budget left


def test_every_try_carries_the_remaining_budget_downstream(service, connect) -> None:
    service.script = [Answer(503)]
    started_ms = time.time() * 1000
    with deadline_in(2.0):
        connect(service.url, read=5.0).call("GET", "/users/ada")
    sent = [int(r.headers["Murmur-Deadline"]) for r in service.received]
    assert len(sent) == 2
    for deadline_ms in sent:
        assert started_ms + 1500 < deadline_ms <= time.time() * 1000 + 2000


def test_a_peer_is_given_no_more_time_than_the_caller_waits_for_its_answer(service, connect) -> None:
    # Past the read timeout nobody reads the answer: a peer that went on would commit
    # work its caller reported as failed.
    service.script = [Answer(200)]
    started_ms = time.time() * 1000
    with deadline_in(5.0):
        connect(service.url, read=0.5).call("GET", "/users/ada")
    (deadline_ms,) = [int(r.headers["Murmur-Deadline"]) for r in service.received]
    assert started_ms + 300 < deadline_ms <= time.time() * 1000 + 500


def test_without_a_deadline_the_peer_is_given_the_read_timeout(service, connect) -> None:
    started_ms = time.time() * 1000
    connect(service.url, read=0.5).call("GET", "/users/ada")
    deadline_ms = int(service.received[0].headers["Murmur-Deadline"])
    assert started_ms + 300 < deadline_ms <= time.time() * 1000 + 500


def test_a_passed_deadline_fails_without_calling(service, connect) -> None:
    client = connect(service.url)
    before = calls("200")
    with deadline_in(-1.0):
        fails(OutOfTime, lambda: client.call("GET", "/users/ada"))
    assert service.received == []
    assert calls("200") == before
    assert client.breaker.fail_counter == 0


def test_the_read_timeout_is_cut_to_the_remaining_budget(service, connect) -> None:
    service.answer = Answer(hang=True)
    client = connect(service.url, read=10.0, fail_max=1)
    started = time.monotonic()
    with deadline_in(0.3):
        fails(OutOfTime, lambda: client.call("GET", "/users/ada"))
    assert time.monotonic() - started < 3  # the read budget alone would be 10 s
    # Running out of the caller's time is not the peer failing, and leaves nothing to retry.
    assert len(service.received) == 1
    assert not client.breaker.is_open and client.breaker.fail_counter == 0


def test_a_trial_cut_short_by_the_deadline_leaves_the_breaker_half_open(
        service, connect) -> None:
    service.answer = Answer(500)
    client = connect(service.url, read=10.0, fail_max=1, reset_timeout=0.05)
    refused(lambda: client.call("GET", "/users/ada"))
    wait_until(lambda: client.breaker.time_to_trial() == 0, message="the reset timeout")
    service.answer = Answer(hang=True)
    with deadline_in(0.2):
        fails(OutOfTime, lambda: client.call("GET", "/users/ada"))
    # The trial proved nothing either way: the next call is the trial again.
    assert client.breaker.current_state == "half-open"
    service.released.set()
    service.answer = Answer(200, {"id": "1"})
    assert client.call("GET", "/users/ada").status == 200
    assert client.breaker.current_state == "closed"


def test_retries_end_when_the_budget_does(service, connect) -> None:
    service.answer = Answer(hang=True)
    client = connect(service.url, read=0.2, retry_attempts=10)
    started = time.monotonic()
    with deadline_in(0.3):
        with pytest.raises(PeerUnavailable):
            client.call("GET", "/users/ada")
    # A full 0.2 s try, then a second one cut to the 0.1 s left; no third.
    assert time.monotonic() - started < 3
    assert len(service.received) == 2
    assert client.breaker.fail_counter == 1

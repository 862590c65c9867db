"""How the gateway calls a downstream and translates its answers and failures, on the wire.

Each test talks to a small HTTP server in a thread that answers as it is told and records
what it received, so headers, bodies, timeouts and pooling are proven over a real socket.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from common import logs
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
        answer = self.server.answer
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

    def make(url: str, *, read: float = TIMEOUT, pool_size: int = 4) -> Downstream:
        made.append(Downstream(DownstreamConfig("users", url, TIMEOUT, read, pool_size),
                               retry_after=2))
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
def test_a_downstream_5xx_becomes_503_with_retry_after_and_no_retry(
        service, connect, status) -> None:
    service.answer = Answer(status, {"detail": "internal details"})
    before = calls(str(status))
    problem = unavailable(lambda: connect(service.url).call("GET", "/users/ada"))
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
        unavailable(lambda: connect(service.url).call("GET", "/users/ada"))
    assert time.monotonic() - started < 5  # the server holds out for 10 s
    assert calls("timeout") == before + 1
    assert "did not answer in time" in caplog.text


def test_a_connect_that_hangs_becomes_503(silent_port, connect) -> None:
    before = calls("timeout")
    unavailable(lambda: connect(f"http://127.0.0.1:{silent_port}").call("GET", "/users/ada"))
    assert calls("timeout") == before + 1


def test_a_refused_connection_becomes_503(closed_port, connect) -> None:
    before = calls("error")
    unavailable(lambda: connect(f"http://127.0.0.1:{closed_port}").call("GET", "/users/ada"))
    assert calls("error") == before + 1


def test_a_saturated_pool_is_a_bounded_wait_not_another_socket(service, connect) -> None:
    service.answer = Answer(hang=True)
    downstream = connect(service.url, read=10.0, pool_size=1)
    first: list[int] = []

    def hold_the_only_connection() -> None:
        try:
            downstream.call("GET", "/users/slow")
        except Problem as problem:
            first.append(problem.status)

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    wait_until(lambda: service.received, message="the first call reaching the service")
    started = time.monotonic()
    unavailable(lambda: downstream.call("GET", "/users/ada"))
    assert time.monotonic() - started < 5  # the first call holds its connection for 10 s
    assert [r.path for r in service.received] == ["/users/slow"]
    service.released.set()
    holder.join(5)
    assert first == [503]  # released without an answer, the first call fails as well

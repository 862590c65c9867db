"""How the gateway translates downstream answers and failures."""

from __future__ import annotations

import json

import pytest
import requests

from common import logs
from common.problems import Problem
from gateway.config import DownstreamConfig
from gateway.downstream import Downstream

CFG = DownstreamConfig("users", "http://users.test", 0.2, 1.0, 4)


class FakeSession:
    """Answers every request with `status`/`body`, or raises `error`."""

    def __init__(self, status=200, body=None, headers=None, error=None) -> None:
        self.status, self.body, self.headers, self.error = status, body, headers or {}, error
        self.sent: list[dict] = []

    def request(self, method, url, **kwargs):
        self.sent.append({"method": method, "url": url, **kwargs})
        if self.error:
            raise self.error
        resp = requests.Response()
        resp.status_code = self.status
        resp._content = json.dumps(self.body).encode() if self.body is not None else b""
        resp.headers.update(self.headers)
        return resp

    def close(self) -> None:
        pass


def call(session: FakeSession, **kwargs):
    return Downstream(CFG, retry_after=2, session=session).call("GET", "/users/ada", **kwargs)


def test_a_success_returns_the_body_and_headers() -> None:
    reply = call(FakeSession(200, {"id": "1"}, {"ETag": '"1"'}))
    assert reply.body == {"id": "1"}
    assert reply.passed_headers() == {"ETag": '"1"'}


def test_identity_request_id_and_timeouts_travel_downstream() -> None:
    session = FakeSession(200, {})
    token = logs.request_id_var.set("rid-1")
    try:
        call(session, user_id="42", headers={"If-Match": '"3"', "Idempotency-Key": None})
    finally:
        logs.request_id_var.reset(token)
    sent = session.sent[0]
    assert sent["headers"]["X-User-Id"] == "42"
    assert sent["headers"]["X-Request-ID"] == "rid-1"
    assert sent["headers"]["If-Match"] == '"3"'
    assert "Idempotency-Key" not in sent["headers"]
    assert sent["timeout"] == (0.2, 1.0)


def test_a_downstream_4xx_problem_passes_through_unchanged() -> None:
    body = {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": "bad", "errors": [{"field": "cursor", "message": "bad cursor"}]}
    with pytest.raises(Problem) as caught:
        call(FakeSession(422, body))
    assert caught.value.to_dict() == body


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_downstream_5xx_becomes_503_with_retry_after(status) -> None:
    with pytest.raises(Problem) as caught:
        call(FakeSession(status, {"detail": "internal details"}))
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "2"
    assert "internal details" not in caught.value.detail


@pytest.mark.parametrize("error", [requests.ConnectTimeout(), requests.ReadTimeout(),
                                   requests.ConnectionError()])
def test_timeouts_and_refused_connections_become_503(error) -> None:
    with pytest.raises(Problem) as caught:
        call(FakeSession(error=error))
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "2"


def test_a_4xx_without_a_problem_body_keeps_its_status() -> None:
    with pytest.raises(Problem) as caught:
        call(FakeSession(404, None))
    assert caught.value.status == 404


def test_the_pool_holds_one_connection_per_thread() -> None:
    adapter = Downstream(CFG).session.get_adapter("http://users.test")
    assert adapter._pool_maxsize == 4

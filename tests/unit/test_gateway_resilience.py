"""The gateway's resilience, seen from its public API: its own deadline per request, fast 503s
for a dependency that is down, degraded answers passed on, and which calls may be retried."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from common import resilience
from gateway.adapters.timeline import TimelineClient
from gateway.adapters.users import UsersClient
from gateway.app import create_app
from gateway.auth import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.downstream import IDEMPOTENT_METHODS, Reply
from unit._gateway_tokens import PUBLIC, TWEET, USER, bearer

BUDGET = 2.0


def unix_ms(offset: float) -> str:
    """A Murmur-Deadline value `offset` seconds from now."""
    return str(int((time.time() + offset) * 1000))


@pytest.fixture
def closed_url() -> str:
    """A local base URL where connecting is refused."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return f"http://127.0.0.1:{listener.getsockname()[1]}"


def gateway_config(url: str, budget: float = BUDGET, **settings: Any) -> GatewayConfig:
    down = {name: DownstreamConfig(name, url, 0.2, 0.2, 2, retry_base=0.001, **settings)
            for name in ("users", "timeline")}
    return GatewayConfig(users=down["users"], timeline=down["timeline"], jwt_public_key=PUBLIC,
                         jwt_public_key_file=Path("/nonexistent"), jwt_leeway=0, retry_after=1,
                         request_budget=budget)


class BudgetProbe:
    """A users client that notes how much of the request's budget is left when called."""

    def __init__(self) -> None:
        self.left: list[float | None] = []

    def by_username(self, username: str) -> Reply:
        self.left.append(resilience.remaining())
        return Reply(200, USER, {"ETag": '"1"'})


class DegradedTimeline:
    """A timeline answering from its fallback."""

    def home(self, user_id: str, limit: int, cursor: str | None) -> Reply:
        return Reply(200, {"items": [TWEET], "next_cursor": None},
                     {"Murmur-Degraded": "home-cache"})


class Directory:
    def authors(self, ids):
        return {"5": USER}


def probe_client(closed_url: str) -> tuple[Any, BudgetProbe]:
    probe = BudgetProbe()
    app = create_app(gateway_config(closed_url), users=probe, tokens=TokenVerifier(PUBLIC))
    return app.test_client(), probe


# -------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("client_deadline", [-10.0, 0.001, 3600.0])
def test_a_clients_deadline_header_is_ignored_for_the_gateways_own_budget(
        closed_url, client_deadline) -> None:
    client, probe = probe_client(closed_url)
    resp = client.get("/api/v1/users/ada", headers={"Murmur-Deadline": unix_ms(client_deadline)})
    assert resp.status_code == 200
    [left] = probe.left
    assert left is not None and BUDGET - 0.5 < left <= BUDGET


def test_every_request_gets_the_configured_budget(closed_url) -> None:
    client, probe = probe_client(closed_url)
    assert client.get("/api/v1/users/ada").status_code == 200
    [left] = probe.left
    assert left is not None and BUDGET - 0.5 < left <= BUDGET


def test_a_request_out_of_time_answers_503_problem_json_without_calling(closed_url) -> None:
    app = create_app(gateway_config(closed_url, budget=0.0), tokens=TokenVerifier(PUBLIC))
    resp = app.test_client().get("/api/v1/users/ada")
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["Retry-After"] == "1"
    # Refused for lack of time, not after trying the (unreachable) service.
    assert "time budget" in resp.get_json()["detail"]


# ------------------------------------------------------------------ dependencies down


def test_a_dependency_down_answers_503_problem_json_then_fails_fast(closed_url) -> None:
    app = create_app(gateway_config(closed_url, fail_max=2, reset_timeout=30),
                     users=Directory(), tokens=TokenVerifier(PUBLIC))
    client = app.test_client()
    answers = []
    for _ in range(6):
        started = time.perf_counter()
        resp = client.get("/api/v1/timeline", headers=bearer())
        answers.append((resp, time.perf_counter() - started))
    for resp, _ in answers:
        assert resp.status_code == 503
        assert resp.mimetype == "application/problem+json"
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.get_json()["detail"] == "The timeline service is unavailable."
    assert REGISTRY.get_sample_value("murmur_breaker_state", {"breaker": "timeline"}) == 2
    # Once open, the breaker answers for the service until its reset timeout.
    assert int(answers[-1][0].headers["Retry-After"]) > 20
    assert max(elapsed for _, elapsed in answers[-3:]) < 0.1


def test_a_degraded_home_timeline_keeps_its_marker(closed_url) -> None:
    app = create_app(gateway_config(closed_url), users=Directory(), timeline=DegradedTimeline(),
                     tokens=TokenVerifier(PUBLIC))
    resp = app.test_client().get("/api/v1/timeline", headers=bearer())
    assert resp.status_code == 200
    assert resp.headers["Murmur-Degraded"] == "home-cache"


# ---------------------------------------------------------------- what may be retried


class RecordingHttp:
    """A Downstream stand-in noting whether each call would be retried."""

    def __init__(self) -> None:
        self.retried: dict[str, bool] = {}

    def call(self, method: str, path: str, *, idempotent: bool | None = None,
             **_: Any) -> Reply:
        self.retried[f"{method} {path}"] = (method in IDEMPOTENT_METHODS
                                            if idempotent is None else idempotent)
        return Reply(200, {})


def test_only_idempotent_calls_are_retried() -> None:
    http = RecordingHttp()
    users, timeline = UsersClient(http), TimelineClient(http)  # type: ignore[arg-type]
    users.register({})
    users.open_session({})
    users.by_username("ada")
    users.update("5", {}, '"1"')
    users.follow("5", "bob")
    users.unfollow("5", "bob")
    users.authors(["7"])
    timeline.post("5", "no key", None)
    timeline.delete("5", "99")
    timeline.home("5", 20, None)
    assert http.retried == {
        "POST /users": False, "POST /sessions": False, "GET /users/ada": True,
        "PATCH /users/5": False, "PUT /users/5/following/bob": True,
        "DELETE /users/5/following/bob": True, "POST /internal/users/batch": True,
        "POST /tweets": False, "DELETE /tweets/99": True, "GET /timeline": True,
    }
    timeline.post("5", "with a key", "key-1")
    assert http.retried["POST /tweets"] is True


def test_a_deliberate_503_from_a_service_is_passed_on_without_tripping_or_retrying():
    """users answering 503 + Retry-After (its Postgres is down) is healthy: pass it on."""
    import json as jsonlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from common.problems import Problem
    from gateway.config import DownstreamConfig
    from gateway.downstream import Downstream

    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            body = jsonlib.dumps({"type": "about:blank", "title": "Service Unavailable",
                                  "status": 503, "detail": "Postgres is down."}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Retry-After", "4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = DownstreamConfig(name="users-deliberate",
                               base_url=f"http://127.0.0.1:{server.server_port}",
                               connect_timeout=0.5, read_timeout=1.0, pool_size=2,
                               fail_max=2)
        client = Downstream(cfg)
        for _ in range(5):
            try:
                client.call("GET", "/users/ada")
            except Problem as problem:
                assert problem.status == 503 and problem.headers["Retry-After"] == "4"
            else:
                raise AssertionError("a 503 must be raised as a Problem")
        assert len(hits) == 5, "retried, or refused by an open breaker"
        assert not client.breaker.is_open
    finally:
        server.shutdown()

"""The gateway's resilience, seen from its public API: its own deadline per request, fast 503s
for a dependency that is down, peers' refusals passed on, reads that survive users being
down, and which calls may be retried."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from prometheus_client import REGISTRY

from common import resilience
from common.client import HttpClient
from gateway.adapters.timeline import TimelineClient
from gateway.adapters.tokens import TokenVerifier
from gateway.adapters.users import UsersClient
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.domain.model import Principal, Result
from gateway.entrypoints.app import create_app
from unit._fake_peer import Answer, FakeService, running_service
from unit._gateway_tokens import AUTHOR, PUBLIC, TWEET, USER, bearer

BUDGET = 2.0


def unix_ms(offset: float) -> str:
    """A Murmur-Deadline value `offset` seconds from now."""
    return str(int((time.time() + offset) * 1000))


@pytest.fixture
def closed_url() -> str:
    """A local base URL where connecting is refused."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def peer() -> Iterator[FakeService]:
    with running_service() as server:
        yield server


def gateway_config(url: str, budget: float = BUDGET, timeline_url: str | None = None,
                   **settings: Any) -> GatewayConfig:
    urls = {"users": url, "timeline": timeline_url or url}
    down = {name: DownstreamConfig(name, urls[name], 0.2, 0.2, 2, retry_base=0.001, **settings)
            for name in ("users", "timeline")}
    return GatewayConfig(users=down["users"], users_sign_in=down["users"],
                         timeline=down["timeline"], jwt_public_keys=PUBLIC,
                         jwt_public_keys_file=Path("/nonexistent"), jwt_leeway=0, retry_after=1,
                         request_budget=budget)


class BudgetProbe:
    """A users peer that notes how much of the request's budget is left when called."""

    def __init__(self) -> None:
        self.left: list[float | None] = []

    def profile(self, username: str) -> Result:
        self.left.append(resilience.remaining())
        return Result(USER, version='"1"')


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


def test_a_request_out_of_time_answers_503_problem_json_without_calling(peer) -> None:
    app = create_app(gateway_config(peer.url, budget=0.0), tokens=TokenVerifier(PUBLIC))
    resp = app.test_client().get("/api/v1/users/ada")
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["Retry-After"] == "1"
    assert "time budget" in resp.get_json()["detail"]
    assert peer.received == []


# ------------------------------------------------------------------ dependencies down


def test_a_dependency_down_answers_503_problem_json_then_fails_fast(closed_url) -> None:
    app = create_app(gateway_config(closed_url, fail_max=2, reset_timeout=30),
                     tokens=TokenVerifier(PUBLIC))
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
    assert REGISTRY.get_sample_value("murmur_breaker_state",
                                     {"breaker": "gateway.timeline"}) == 2
    # Once open, the breaker answers for the service until its reset timeout.
    assert int(answers[-1][0].headers["Retry-After"]) > 20
    assert max(elapsed for _, elapsed in answers[-3:]) < 0.1


def test_a_peers_refusal_passes_through_unchanged(peer) -> None:
    body = {"type": "about:blank", "title": "Precondition Failed", "status": 412,
            "detail": "The profile has changed.", "errors": [{"field": "If-Match",
                                                              "message": "stale"}]}
    peer.answer = Answer(412, body, {"ETag": '"4"', "Server-Timing": "db;dur=1",
                                     "Content-Type": "application/problem+json"})
    app = create_app(gateway_config(peer.url), tokens=TokenVerifier(PUBLIC))
    resp = app.test_client().patch("/api/v1/users/me", json={"bio": "x"},
                                   headers={**bearer(), "If-Match": '"3"'})
    assert resp.status_code == 412
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json() == body
    assert resp.headers["ETag"] == '"4"' and "Server-Timing" not in resp.headers


def test_a_deliberate_503_of_a_peer_is_passed_on_with_its_retry_after(peer) -> None:
    peer.answer = Answer(503, {"status": 503, "title": "Service Unavailable",
                               "detail": "Postgres is down."},
                         {"Retry-After": "4", "Content-Type": "application/problem+json"})
    app = create_app(gateway_config(peer.url, fail_max=1), tokens=TokenVerifier(PUBLIC))
    client = app.test_client()
    for _ in range(3):
        resp = client.get("/api/v1/users/ada")
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "4"
        assert resp.get_json()["detail"] == "Postgres is down."
    assert len(peer.received) == 3  # neither retried nor refused by an open breaker


def test_a_peer_answering_garbage_is_a_503_not_a_500(peer) -> None:
    peer.answer = Answer(200, raw=b"<html>proxy error</html>",
                         headers={"Content-Type": "text/html"})
    app = create_app(gateway_config(peer.url), tokens=TokenVerifier(PUBLIC))
    resp = app.test_client().get("/api/v1/tweets/99")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.get_json()["detail"] == "The timeline service is unavailable."
    assert len(peer.received) == 1  # a GET, yet not retried: the answer would be the same


def test_reads_and_posts_answer_with_authors_while_users_is_down(closed_url, peer) -> None:
    """Timeline answers tweets with their authors itself: users down changes nothing."""
    app = create_app(gateway_config(closed_url, timeline_url=peer.url),
                     tokens=TokenVerifier(PUBLIC))
    client = app.test_client()
    users_calls_before = users_calls()
    page = {"items": [TWEET], "next_cursor": None}
    for path, auth, body in (("/api/v1/timeline", True, page),
                             ("/api/v1/users/ada/tweets", False, page),
                             ("/api/v1/tweets/99", False, TWEET)):
        peer.answer = Answer(200, body)
        resp = client.get(path, headers=bearer() if auth else {})
        assert resp.status_code == 200, path
        shown = resp.get_json()
        assert [t["author"] for t in shown.get("items", [shown])] == [AUTHOR]
    peer.answer = Answer(201, TWEET)
    resp = client.post("/api/v1/tweets", json={"text": "hello"}, headers=bearer())
    assert resp.status_code == 201 and resp.get_json()["author"] == AUTHOR
    assert users_calls() == users_calls_before  # users was not even tried


def users_calls() -> float:
    """Calls to users this process has made, whatever their method and outcome."""
    return sum(sample.value for metric in REGISTRY.collect()
               if metric.name == "murmur_downstream_request_duration_seconds"
               for sample in metric.samples
               if sample.name.endswith("_count") and sample.labels["downstream"] == "users")


# ---------------------------------------------------------- what travels to timeline


def test_the_timeline_peer_is_called_as_documented(peer) -> None:
    timeline = TimelineClient(HttpClient(gateway_config(peer.url).timeline))
    peer.answer = Answer(201, TWEET)
    timeline.post(Principal("5", "ada"), "hello", "k-1")
    peer.answer = Answer(200, {"items": [], "next_cursor": None})
    timeline.user_tweets("ada", 20, "c1")
    timeline.home("5", 10, None)
    posted, by_name, home = peer.received
    assert (posted.method, posted.path) == ("POST", "/tweets")
    assert posted.headers["X-User-Id"] == "5" and posted.headers["Murmur-Username"] == "ada"
    assert posted.headers["Idempotency-Key"] == "k-1"
    assert (by_name.method, by_name.path) == ("GET",
                                             "/authors/by-username/ada/tweets?limit=20&cursor=c1")
    assert "X-User-Id" not in by_name.headers
    assert (home.path, home.headers["X-User-Id"]) == ("/timeline?limit=10", "5")
    timeline.close()


# ---------------------------------------------------------------- what may be retried


class RecordingHttp:
    """An HttpClient stand-in noting whether each call would be retried."""

    def __init__(self) -> None:
        self.retried: dict[str, bool] = {}

    def call(self, method: str, path: str, *, idempotent: bool | None = None,
             **_: Any) -> Any:
        from common.client import IDEMPOTENT_METHODS, Reply

        self.retried[f"{method} {path.split('?')[0]}"] = (
            method in IDEMPOTENT_METHODS if idempotent is None else idempotent)
        return Reply("peer", 200, {})


def test_only_idempotent_calls_are_retried() -> None:
    http = RecordingHttp()
    users, timeline = UsersClient(http), TimelineClient(http)  # type: ignore[arg-type]
    users.register({}, None, "10.0.0.1")
    users.open_session({}, "10.0.0.1")
    users.profile("ada")
    users.update_profile("5", {}, '"1"')
    users.follow("5", "bob")
    users.unfollow("5", "bob")
    timeline.post(Principal("5", "ada"), "no key", None)
    timeline.delete("5", "99")
    timeline.home("5", 20, None)
    timeline.user_tweets("ada", 20, None)
    assert http.retried == {
        "POST /users": False, "POST /sessions": False, "GET /users/ada": True,
        "PATCH /users/5": False, "PUT /users/5/following/bob": True,
        "DELETE /users/5/following/bob": True, "POST /tweets": False,
        "DELETE /tweets/99": True, "GET /timeline": True,
        "GET /authors/by-username/ada/tweets": True,
    }
    timeline.post(Principal("5", "ada"), "with a key", "key-1")
    assert http.retried["POST /tweets"] is True
    users.register({}, "key-1", "10.0.0.1")
    assert http.retried["POST /users"] is True


def test_sign_in_floods_cannot_open_the_breaker_that_profile_reads_use() -> None:
    sign_in, everything_else = RecordingHttp(), RecordingHttp()
    users = UsersClient(everything_else, sign_in)  # type: ignore[arg-type]
    users.register({}, None, None)
    users.open_session({}, None)
    users.profile("ada")
    assert set(sign_in.retried) == {"POST /users", "POST /sessions"}
    assert set(everything_else.retried) == {"GET /users/ada"}

"""The gateway's public routes with fake peers: validation, auth, routing, and one
downstream call per request."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.client import Rejected
from gateway.adapters.tokens import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.domain.model import Principal, Result
from gateway.entrypoints.app import create_app
from unit._gateway_tokens import AUTHOR, PUBLIC, TWEET, USER, bearer


def not_found(detail: str) -> Rejected:
    return Rejected("users", 404, {"type": "about:blank", "title": "Not Found", "status": 404,
                                   "detail": detail}, {})


class FakeUsers:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def profile(self, username):
        self.calls.append(("profile", username))
        if username == "ghost":
            raise not_found("No such user.")
        return Result(USER, version='"3"')

    def update_profile(self, user_id, changes, version):
        self.calls.append(("update_profile", user_id, changes, version))
        return Result({**USER, **changes}, version='"4"')

    def follow(self, user_id, username):
        self.calls.append(("follow", user_id, username))

    def relations(self, username, which, limit, cursor):
        self.calls.append(("relations", username, which, limit, cursor))
        return Result({"items": [USER], "next_cursor": None})


class FakeTimeline:
    """Answers as timeline does (tweets with their authors) and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def post(self, author, text, key):
        self.calls.append(("post", author, text, key))
        return Result({**TWEET, "text": text})

    def tweet(self, tweet_id):
        self.calls.append(("tweet", tweet_id))
        return Result({**TWEET, "id": tweet_id})

    def home(self, user_id, limit, cursor):
        self.calls.append(("home", user_id, limit, cursor))
        bob = {"id": "6", "username": "bob", "display_name": "Bob"}
        return Result({"items": [TWEET, {**TWEET, "id": "98", "author": bob}],
                       "next_cursor": "c1"})

    def user_tweets(self, username, limit, cursor):
        self.calls.append(("user_tweets", username, limit, cursor))
        if username == "ghost":
            raise not_found("No such user.")
        return Result({"items": [TWEET], "next_cursor": None})


class UsersMustNotBeCalled:
    """A users peer for requests that must not need users: any call fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"users.{name} was called")


def config() -> GatewayConfig:
    down = DownstreamConfig("x", "http://127.0.0.1:9", 0.1, 0.1, 1)
    return GatewayConfig(users=down, users_sign_in=down, timeline=down, jwt_public_keys=PUBLIC,
                         jwt_public_keys_file=Path("/nonexistent"), jwt_leeway=0,
                         retry_after=1)


@pytest.fixture()
def fakes():
    return FakeUsers(), FakeTimeline()


@pytest.fixture()
def client(fakes):
    users, timeline = fakes
    app = create_app(config(), users=users, timeline=timeline, tokens=TokenVerifier(PUBLIC))
    return app.test_client()


@pytest.fixture()
def without_users():
    """A client whose users peer fails the test if called, and the timeline peer."""
    timeline = FakeTimeline()
    app = create_app(config(), users=UsersMustNotBeCalled(), timeline=timeline,
                     tokens=TokenVerifier(PUBLIC))
    return app.test_client(), timeline


def fields(resp) -> list[str]:
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    return [e["field"] for e in resp.get_json()["errors"]]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=-1"])
def test_a_limit_outside_1_to_100_is_a_422_naming_limit(client, query) -> None:
    assert fields(client.get(f"/api/v1/users/ada/tweets?{query}")) == ["limit"]


@pytest.mark.parametrize("cursor", ["%20", "a%2Fb", "x" * 513, "%00"])
def test_a_malformed_cursor_is_a_422_naming_cursor(client, cursor) -> None:
    assert fields(client.get(f"/api/v1/users/ada/followers?cursor={cursor}")) == ["cursor"]


def test_limit_and_cursor_reach_the_downstream(client, fakes) -> None:
    resp = client.get("/api/v1/timeline?limit=2&cursor=abc_-1", headers=bearer())
    assert resp.status_code == 200
    assert fakes[1].calls == [("home", "5", 2, "abc_-1")]


def test_the_default_limit_is_20(client, fakes) -> None:
    client.get("/api/v1/users/ada/following")
    assert fakes[0].calls[-1] == ("relations", "ada", "following", 20, None)


# ------------------------------------------------------ reads: one call, none to users


@pytest.mark.parametrize("path,auth,call", [
    ("/api/v1/timeline", True, ("home", "5", 20, None)),
    ("/api/v1/users/ada/tweets", False, ("user_tweets", "ada", 20, None)),
    ("/api/v1/tweets/99", False, ("tweet", "99")),
])
def test_every_read_is_one_call_to_timeline_and_none_to_users(
        without_users, path, auth, call) -> None:
    client, timeline = without_users
    resp = client.get(path, headers=bearer() if auth else {})
    assert resp.status_code == 200
    assert timeline.calls == [call]
    body = resp.get_json()
    for tweet in body.get("items", [body]):
        assert tweet["author"]["username"] in ("ada", "bob")


def test_a_home_timeline_page_shows_each_tweets_own_author(client) -> None:
    body = client.get("/api/v1/timeline", headers=bearer()).get_json()
    assert [t["author"] for t in body["items"]] == [
        AUTHOR, {"id": "6", "username": "bob", "display_name": "Bob"}]
    assert body["next_cursor"] == "c1"


def test_a_tweet_shows_the_public_fields_only(client) -> None:
    body = client.get("/api/v1/tweets/99").get_json()
    assert body == {"id": "99", "author": AUTHOR, "text": "hello",
                    "created_at": "2026-01-01T00:00:00Z"}


def test_an_author_timeline_does_not_know_yet_shows_with_empty_names(client, fakes) -> None:
    fakes[1].tweet = lambda tweet_id: Result(
        {**TWEET, "author": {"id": "7", "username": None, "display_name": None}})
    assert client.get("/api/v1/tweets/99").get_json()["author"] == {
        "id": "7", "username": "", "display_name": ""}


def test_an_unknown_username_is_timelines_404_passed_through(client) -> None:
    resp = client.get("/api/v1/users/ghost/tweets")
    assert resp.status_code == 404
    assert resp.get_json()["detail"] == "No such user."


def test_a_degraded_read_keeps_its_marker(client, fakes) -> None:
    fakes[1].home = lambda *_: Result({"items": [], "next_cursor": None},
                                      degraded="home-timeline-rebuilt")
    resp = client.get("/api/v1/timeline", headers=bearer())
    assert resp.status_code == 200
    assert resp.headers["Murmur-Degraded"] == "home-timeline-rebuilt"


# --------------------------------------------------------------------------- posting


def test_a_protected_route_answers_401_before_validating_the_body(client) -> None:
    resp = client.post("/api/v1/tweets", json={"text": ""})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_post_names_its_author_from_the_token_and_never_calls_users(without_users) -> None:
    client, timeline = without_users
    resp = client.post("/api/v1/tweets", json={"text": "hello"},
                       headers={**bearer(), "Idempotency-Key": "k-1"})
    assert resp.status_code == 201
    assert resp.get_json()["author"] == AUTHOR
    assert timeline.calls == [("post", Principal("5", "ada"), "hello", "k-1")]


@pytest.mark.parametrize("body,field", [({"text": ""}, "text"), ({"text": "x" * 281}, "text"),
                                        ({}, "text"), ({"text": "a", "extra": 1}, "extra"),
                                        ("not an object", "body")])
def test_an_invalid_tweet_is_a_422_naming_the_field(client, body, field) -> None:
    resp = client.post("/api/v1/tweets", json=body, headers=bearer())
    assert field in fields(resp)


# ------------------------------------------------------------------ accounts and graph


def test_a_profile_carries_its_version_as_etag(client) -> None:
    resp = client.get("/api/v1/users/ada")
    assert resp.status_code == 200
    assert resp.headers["ETag"] == '"3"'
    assert resp.get_json() == USER


def test_patch_me_forwards_if_match_and_returns_the_new_etag(client, fakes) -> None:
    resp = client.patch("/api/v1/users/me", json={"bio": "hi"},
                        headers={**bearer(), "If-Match": '"3"'})
    assert resp.status_code == 200
    assert resp.headers["ETag"] == '"4"'
    assert fakes[0].calls == [("update_profile", "5", {"bio": "hi"}, '"3"')]


@pytest.mark.parametrize("if_none_match", ['"3"', 'W/"3"', '"9", "3"', "*"])
def test_a_read_naming_the_current_etag_is_a_304_without_a_body(client, if_none_match) -> None:
    for method in (client.get, client.head):
        resp = method("/api/v1/users/ada", headers={"If-None-Match": if_none_match})
        assert resp.status_code == 304
        assert resp.headers["ETag"] == '"3"' and resp.data == b""
        assert "Content-Type" not in resp.headers


@pytest.mark.parametrize("headers", [{"If-None-Match": '"03"'}, {"If-None-Match": "3"},
                                     {"If-None-Match": ""}, {"If-Match": '"3"'},
                                     {"If-Match": "*", "If-None-Match": '"4"'}])
def test_a_read_whose_preconditions_hold_or_do_not_parse_is_answered_in_full(client,
                                                                            headers) -> None:
    resp = client.get("/api/v1/users/ada", headers=headers)
    assert resp.status_code == 200 and resp.get_json() == USER


@pytest.mark.parametrize("if_match", ['"03"', 'W/"3"', '"4", "5"'])
def test_a_read_whose_if_match_names_none_of_its_tags_is_a_412(client, if_match) -> None:
    resp = client.get("/api/v1/users/ada", headers={"If-Match": if_match,
                                                    "If-None-Match": '"3"'})
    assert resp.status_code == 412 and resp.mimetype == "application/problem+json"
    assert resp.headers["ETag"] == '"3"'


def test_a_tweet_carries_an_etag_of_its_body_and_answers_304_to_it(client) -> None:
    first = client.get("/api/v1/tweets/99")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and client.get("/api/v1/tweets/99").headers["ETag"] == etag
    assert client.get("/api/v1/tweets/98").headers["ETag"] != etag
    again = client.get("/api/v1/tweets/99", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize("if_match", [None, "", "  ", "3", "'3'"])
def test_an_edit_without_a_usable_if_match_is_a_428_before_users_is_asked(client, fakes,
                                                                         if_match) -> None:
    headers = {**bearer(), **({"If-Match": if_match} if if_match is not None else {})}
    resp = client.patch("/api/v1/users/me", json={"bio": "hi"}, headers=headers)
    assert resp.status_code == 428 and resp.mimetype == "application/problem+json"
    assert fakes[0].calls == []


def test_an_edit_passes_an_if_match_list_on_as_sent(client, fakes) -> None:
    resp = client.patch("/api/v1/users/me", json={"bio": "hi"},
                        headers={**bearer(), "If-Match": '"1", "3"'})
    assert resp.status_code == 200
    assert fakes[0].calls == [("update_profile", "5", {"bio": "hi"}, '"1", "3"')]


def test_following_acts_as_the_token_holder(client, fakes) -> None:
    resp = client.put("/api/v1/users/me/following/bob", headers=bearer("7"))
    assert resp.status_code == 204
    assert fakes[0].calls == [("follow", "7", "bob")]


def test_an_invalid_username_in_the_path_is_a_422(client) -> None:
    assert fields(client.get("/api/v1/users/Not-Valid")) == ["username"]


def test_a_tweet_id_must_be_a_positive_64_bit_number(client) -> None:
    assert fields(client.get(f"/api/v1/tweets/{2**63}")) == ["id"]
    assert fields(client.get("/api/v1/tweets/abc")) == ["id"]


def test_an_unknown_route_is_a_404_problem(client) -> None:
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"


def test_the_document_declares_every_public_route(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert set(doc["paths"]) == {
        "/api/v1/users", "/api/v1/sessions", "/api/v1/users/{username}", "/api/v1/users/me",
        "/api/v1/users/me/following/{username}", "/api/v1/users/{username}/followers",
        "/api/v1/users/{username}/following", "/api/v1/tweets", "/api/v1/tweets/{id}",
        "/api/v1/users/{username}/tweets", "/api/v1/timeline", "/api/v1/openapi.json",
        "/api/v1/.well-known/jwks.json", "/api/v1/system/status"}
    for item in doc["paths"].values():
        for op in item.values():
            problem = op["responses"]["422"]["content"]["application/problem+json"]
            assert problem["schema"]["$ref"].endswith("/ProblemDetails")


def test_bootstrap_returns_the_shared_service_shape_and_takes_overrides_by_name() -> None:
    from common.service import Service
    from gateway.bootstrap import bootstrap

    users, timeline, tokens = FakeUsers(), FakeTimeline(), TokenVerifier(PUBLIC)
    status = SimpleNamespace(read=dict)  # the status sources
    service = bootstrap(config(), users=users, timeline=timeline, tokens=tokens, status=status)
    assert isinstance(service, Service) and service.name == "gateway"
    assert (service.ports.users, service.ports.timeline, service.ports.tokens,
            service.ports.status) == (users, timeline, tokens, status)
    assert service.closers == []  # nothing made, nothing to close
    assert service.checks["jwt_public_keys"]() == json.loads(PUBLIC)
    made = bootstrap(config(), tokens=tokens)
    assert len(made.closers) == 3  # the users and timeline clients and the status sources
    made.close()
    with pytest.raises(TypeError, match="directory"):
        bootstrap(config(), directory=object())

"""The gateway's public routes with fake downstreams: validation, auth, routing."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.problems import Problem
from gateway.app import create_app
from gateway.auth import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.downstream import Reply
from unit._gateway_tokens import PUBLIC, TWEET, USER, bearer


class FakeUsers:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def by_username(self, username):
        self.calls.append(("by_username", username))
        if username == "ghost":
            raise Problem(404, "No such user.")
        return Reply(200, USER, {"ETag": '"3"'})

    def update(self, user_id, changes, if_match):
        self.calls.append(("update", user_id, changes, if_match))
        return Reply(200, {**USER, **changes}, {"ETag": '"4"'})

    def follow(self, user_id, username):
        self.calls.append(("follow", user_id, username))

    def relations(self, username, which, limit, cursor):
        self.calls.append(("relations", username, which, limit, cursor))
        return Reply(200, {"items": [USER], "next_cursor": None})

    def authors(self, ids):
        self.calls.append(("authors", list(ids)))
        return {"5": USER}


class FakeTimeline:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def post(self, user_id, text, key):
        self.calls.append(("post", user_id, text, key))
        return Reply(201, {**TWEET, "text": text})

    def home(self, user_id, limit, cursor):
        self.calls.append(("home", user_id, limit, cursor))
        return Reply(200, {"items": [TWEET, {**TWEET, "id": "98"}], "next_cursor": "c1"})

    def by_author(self, author_id, limit, cursor):
        self.calls.append(("by_author", author_id, limit, cursor))
        return Reply(200, {"items": [TWEET], "next_cursor": None})


@pytest.fixture()
def fakes():
    return FakeUsers(), FakeTimeline()


@pytest.fixture()
def client(fakes):
    down = DownstreamConfig("x", "http://127.0.0.1:9", 0.1, 0.1, 1)
    config = GatewayConfig(users=down, timeline=down, jwt_public_key=PUBLIC,
                           jwt_public_key_file=Path("/nonexistent"), jwt_leeway=0,
                           retry_after=1)
    users, timeline = fakes
    app = create_app(config, users=users, timeline=timeline, tokens=TokenVerifier(PUBLIC))
    return app.test_client()


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


def test_a_home_timeline_page_gets_its_authors_in_one_batch(client, fakes) -> None:
    resp = client.get("/api/v1/timeline", headers=bearer())
    body = resp.get_json()
    assert [t["author"]["username"] for t in body["items"]] == ["ada", "ada"]
    assert body["next_cursor"] == "c1"
    assert [c for c in fakes[0].calls if c[0] == "authors"] == [("authors", ["5"])]


def test_an_authors_tweets_need_no_batch_call(client, fakes) -> None:
    resp = client.get("/api/v1/users/ada/tweets")
    assert resp.get_json()["items"][0]["author"] == {"id": "5", "username": "ada",
                                                     "display_name": "Ada"}
    assert not [c for c in fakes[0].calls if c[0] == "authors"]


def test_a_downstream_problem_passes_through(client) -> None:
    resp = client.get("/api/v1/users/ghost/tweets")
    assert resp.status_code == 404
    assert resp.get_json()["detail"] == "No such user."


def test_a_protected_route_answers_401_before_validating_the_body(client) -> None:
    resp = client.post("/api/v1/tweets", json={"text": ""})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_post_carries_the_user_and_idempotency_key(client, fakes) -> None:
    resp = client.post("/api/v1/tweets", json={"text": "hello"},
                       headers={**bearer(), "Idempotency-Key": "k-1"})
    assert resp.status_code == 201
    assert resp.get_json()["author"]["username"] == "ada"
    assert fakes[1].calls == [("post", "5", "hello", "k-1")]


@pytest.mark.parametrize("body,field", [({"text": ""}, "text"), ({"text": "x" * 281}, "text"),
                                        ({}, "text"), ({"text": "a", "extra": 1}, "extra"),
                                        (None, "body")])
def test_an_invalid_tweet_is_a_422_naming_the_field(client, body, field) -> None:
    resp = client.post("/api/v1/tweets", json=body, headers=bearer())
    assert field in fields(resp)


def test_patch_me_forwards_if_match_and_returns_the_new_etag(client, fakes) -> None:
    resp = client.patch("/api/v1/users/me", json={"bio": "hi"},
                        headers={**bearer(), "If-Match": '"3"'})
    assert resp.status_code == 200
    assert resp.headers["ETag"] == '"4"'
    assert fakes[0].calls == [("update", "5", {"bio": "hi"}, '"3"')]


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
        "/api/v1/users/{username}/tweets", "/api/v1/timeline", "/api/v1/openapi.json"}
    for item in doc["paths"].values():
        for op in item.values():
            problem = op["responses"]["422"]["content"]["application/problem+json"]
            assert problem["schema"]["$ref"].endswith("/ProblemDetails")

"""The timeline's HTTP edge over in-memory ports: parsing, rendering and the one mapping of
its errors to problem+json. No store is touched (every port is a fake)."""

from __future__ import annotations

import pytest
import redis
from cassandra import InvalidRequest, OperationTimedOut
from cassandra.cluster import NoHostAvailable

from unit._timeline_fakes import FakeFollowees, RedisDown, memory_ports
from timeline.domain.model import Author
from timeline.entrypoints.app import create_app


@pytest.fixture
def ports():
    return memory_ports()


@pytest.fixture
def app(ports):
    app = create_app(tweets=ports.tweets, cache=ports.cache, home=ports.home,
                     idempotency=ports.idempotency, followees=ports.followees,
                     authors=ports.authors, ids=ports.ids)
    # The app's ports are the fixture's: tests change them through either.
    app.extensions["timeline"].ports = ports
    yield app
    app.extensions["timeline"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, author: int, text: str = "hello", username: str | None = None,
         key: str | None = None):
    headers = {"X-User-Id": str(author)}
    if username is not None:
        headers["Murmur-Username"] = username
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/tweets", json={"text": text}, headers=headers)


# ------------------------------------------------------------------------ tweet shape


def test_a_post_answers_201_with_the_tweet_and_its_author(client, ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 2)
    resp = post(client, 7, "  hello murmur  ", username="ann")
    assert resp.status_code == 201
    body = resp.json
    assert list(body) == ["id", "author", "text", "created_at"]
    assert body["author"] == {"id": "7", "username": "ann", "display_name": "Ann"}
    assert body["text"] == "hello murmur" and body["created_at"].endswith("Z")
    assert resp.headers["Location"] == f"/tweets/{body['id']}"
    assert client.get(f"/tweets/{body['id']}").json == body


def test_a_brand_new_authors_first_tweet_carries_the_username_of_their_token(client, ports):
    body = post(client, 8, "my first", username="newbie").json
    assert body["author"] == {"id": "8", "username": "newbie", "display_name": "newbie"}
    assert client.get(f"/tweets/{body['id']}").json["author"]["username"] == "newbie"


def test_an_author_not_yet_projected_has_null_names(client):
    body = post(client, 9, "anonymous for a moment").json
    assert body["author"] == {"id": "9", "username": None, "display_name": None}


def test_a_malformed_username_header_is_ignored(client, ports):
    body = post(client, 9, "hi", username="Not A Name!").json
    assert body["author"]["username"] is None and ports.authors.rows == {}


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("payload", [{"text": ""}, {"text": " " * 5}, {"text": "x" * 281},
                                     {}, {"text": 5}, ["text"]])
def test_an_invalid_post_is_a_422_problem(client, payload):
    resp = client.post("/tweets", json=payload, headers={"X-User-Id": "5"})
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert resp.json["errors"]


@pytest.mark.parametrize("user", [None, "", "0", "abc", "007", "9223372036854775808"])
def test_a_post_without_a_valid_user_is_a_401(client, user):
    headers = {} if user is None else {"X-User-Id": user}
    assert client.post("/tweets", json={"text": "hi"}, headers=headers).status_code == 401


@pytest.mark.parametrize("key", ["", "x" * 256, "a\tb"])
def test_a_bad_idempotency_key_is_a_422_naming_the_header(client, key):
    resp = post(client, 7, key=key)
    assert resp.status_code == 422
    assert resp.json["errors"][0]["field"] == "Idempotency-Key"


def test_a_reused_key_with_another_text_is_a_422(client):
    assert post(client, 7, "first", key="k").status_code == 201
    resp = post(client, 7, "second", key="k")
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "Idempotency-Key"


def test_a_key_whose_tweet_was_deleted_is_a_409_without_retry_after(client):
    tweet_id = post(client, 7, "once", key="k").json["id"]
    assert client.delete(f"/tweets/{tweet_id}", headers={"X-User-Id": "7"}).status_code == 204
    resp = post(client, 7, "once", key="k")
    assert resp.status_code == 409 and "Retry-After" not in resp.headers


def test_a_key_still_in_progress_is_a_409_with_retry_after(client, ports):
    from dataclasses import replace

    post(client, 7, "once", key="k")
    done = ports.idempotency.records[(7, "k")]
    ports.idempotency.records[(7, "k")] = replace(done, state="pending",
                                                   since_ms=int(ports.clock() * 1000))
    ports.idempotency_wait = 0.05
    resp = post(client, 7, "once", key="k")
    assert resp.status_code == 409 and resp.headers["Retry-After"] == "1"


def test_only_the_author_may_delete_and_unknown_tweets_are_404(client):
    tweet_id = post(client, 7, "mine").json["id"]
    resp = client.delete(f"/tweets/{tweet_id}", headers={"X-User-Id": "8"})
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert client.get(f"/tweets/{tweet_id}").status_code == 200
    assert client.delete("/tweets/1", headers={"X-User-Id": "7"}).status_code == 404
    assert client.get("/tweets/1").status_code == 404


@pytest.mark.parametrize("raw", ["not-an-id", "0", "0123", "-5", "9223372036854775808", "١٢"])
def test_a_path_id_that_cannot_be_an_id_is_a_404(client, raw):
    assert client.get(f"/tweets/{raw}").status_code == 404
    assert client.get(f"/authors/{raw}/tweets").status_code == 404


def test_without_redis_a_post_is_accepted_but_one_with_a_key_is_a_503(client, ports):
    ports.home = ports.cache = ports.idempotency = RedisDown()
    assert post(client, 7, "through the outage").status_code == 201
    resp = post(client, 7, "exactly once", key="k")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    assert resp.mimetype == "application/problem+json"


# ----------------------------------------------------------------------------- pages


def test_author_pages_follow_their_cursors_newest_first(client):
    posted = [post(client, 7, f"tweet {i}").json["id"] for i in range(7)]
    seen, cursor = [], None
    for _ in range(10):
        query = "/authors/7/tweets?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query).json
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(posted, key=int, reverse=True)


def test_a_cursor_is_opaque_and_bound_to_its_list(app, client):
    for i in range(3):
        post(client, 7, f"t{i}")
    page = client.get("/authors/7/tweets?limit=2").json
    cursor = page["next_cursor"]
    assert cursor and page["items"][-1]["id"] not in cursor
    codec = app.extensions["cursors"]
    assert codec.decode("user-tweets", 7, cursor, 1) == (int(page["items"][-1]["id"]),)
    resp = client.get(f"/timeline?cursor={cursor}", headers={"X-User-Id": "7"})
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "cursor"
    # Another author's list, and another user's home timeline, refuse it too.
    resp = client.get(f"/authors/8/tweets?cursor={cursor}")
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "cursor"
    home = client.get("/timeline?limit=1", headers={"X-User-Id": "7"}).json["next_cursor"]
    resp = client.get(f"/timeline?cursor={home}", headers={"X-User-Id": "8"})
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("query", ["cursor=nonsense", "limit=0", "limit=101", "limit=ten",
                                   "limit=-1", "limit="])
def test_a_bad_cursor_or_limit_is_a_422(client, query):
    assert client.get(f"/authors/5/tweets?{query}").status_code == 422
    assert client.get(f"/timeline?{query}", headers={"X-User-Id": "5"}).status_code == 422


def test_a_page_by_username_is_the_authors_page_with_the_same_cursors(app, client, ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    posted = [post(client, 7, f"tweet {i}").json["id"] for i in range(5)]
    post(client, 8, "not ann's")
    first = client.get("/authors/by-username/ann/tweets?limit=2")
    assert first.status_code == 200 and "Murmur-Degraded" not in first.headers
    assert first.json == client.get("/authors/7/tweets?limit=2").json
    assert first.json["items"][0]["author"] == {"id": "7", "username": "ann",
                                                "display_name": "Ann"}
    cursor = first.json["next_cursor"]
    assert app.extensions["cursors"].decode("user-tweets", 7, cursor, 1) == (
        int(first.json["items"][-1]["id"]),)
    seen, query = [], "/authors/by-username/ann/tweets?limit=2"
    for _ in range(10):
        page = client.get(query).json
        seen += [t["id"] for t in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"/authors/by-username/ann/tweets?limit=2&cursor={page['next_cursor']}"
    assert seen == sorted(posted, key=int, reverse=True)


@pytest.mark.parametrize("name", ["nobody", "Ann", "a%2Fb", "ann%00", "%C3%A9t%C3%A9"])
def test_a_username_timeline_does_not_know_is_a_404_problem(client, ports, name):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    resp = client.get(f"/authors/by-username/{name}/tweets")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.json["detail"] == "No such user."


@pytest.mark.parametrize("query", ["cursor=nonsense", "limit=0", "limit=101"])
def test_a_bad_cursor_or_limit_by_username_is_a_422(client, ports, query):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    assert client.get(f"/authors/by-username/ann/tweets?{query}").status_code == 422


def test_a_home_timeline_cursor_is_refused_on_a_page_by_username(client, ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    for i in range(3):
        post(client, 7, f"t{i}")
    home = client.get("/timeline?limit=1", headers={"X-User-Id": "7"}).json["next_cursor"]
    resp = client.get(f"/authors/by-username/ann/tweets?cursor={home}")
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "cursor"


def test_without_the_projection_a_page_by_username_is_a_503(client, ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    ports.authors.down = True
    resp = client.get("/authors/by-username/ann/tweets")
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1
    assert resp.mimetype == "application/problem+json"


def test_a_home_page_carries_authors_and_no_degradation_when_all_answer(client, ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    post(client, 7, "mine")
    resp = client.get("/timeline", headers={"X-User-Id": "7"})
    assert resp.status_code == 200 and "Murmur-Degraded" not in resp.headers
    assert [t["author"] for t in resp.json["items"]] == [
        {"id": "7", "username": "ann", "display_name": "Ann"}]
    assert resp.json["next_cursor"] is None


def test_with_users_down_the_home_timeline_answers_200_without_the_celebrity_merge(client,
                                                                                  ports):
    ports.authors.rows[7] = Author(7, "ann", "Ann", 1)
    own = post(client, 7, "still here").json["id"]
    ports.followees = FakeFollowees(down=True)
    resp = client.get("/timeline", headers={"X-User-Id": "7"})
    assert resp.status_code == 200
    assert resp.headers["Murmur-Degraded"] == "celebrity-merge-unavailable"
    assert [(t["id"], t["author"]["username"]) for t in resp.json["items"]] == [(own, "ann")]


def test_every_part_left_out_is_named_in_murmur_degraded(client, ports):
    post(client, 7, "mine")
    ports.followees = FakeFollowees(down=True)
    ports.authors.down = True
    resp = client.get("/timeline", headers={"X-User-Id": "7"})
    assert resp.status_code == 200
    assert resp.headers["Murmur-Degraded"] == "celebrity-merge-unavailable, authors-unavailable"
    assert resp.json["items"][0]["author"] == {"id": "7", "username": None,
                                               "display_name": None}


def test_without_redis_and_users_the_home_timeline_is_a_503_with_retry_after(client, ports):
    ports.home = ports.cache = ports.idempotency = RedisDown()
    ports.followees = FakeFollowees(down=True)
    resp = client.get("/timeline", headers={"X-User-Id": "7"})
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1


def test_backfill_ids_are_the_newest_first_and_bounded(client):
    posted = [post(client, 7, f"b{i}").json["id"] for i in range(4)]
    resp = client.get("/internal/authors/7/tweet-ids?limit=3")
    assert resp.json == {"ids": sorted(posted, key=int, reverse=True)[:3]}
    assert client.get("/internal/authors/7/tweet-ids?limit=801").status_code == 422


class FailingTweets:
    """A tweet repository whose every call raises `exc` (as outside the guards: e.g. while
    preparing a statement)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __getattr__(self, name):
        def fail(*_args, **_kwargs):
            raise self.exc
        return fail


def redis_reply(message: str):
    """The exception redis-py raises for an error reply `message` from the server."""
    from redis._parsers.base import BaseParser

    return BaseParser.__new__(BaseParser).parse_error(message)


@pytest.mark.parametrize("exc,status", [
    (NoHostAvailable("Unable to connect to any servers", {}), 503),
    (OperationTimedOut("errors={}", None), 503),
    (redis.ConnectionError("Error 111 connecting"), 503),
    (redis_reply("OOM command not allowed when used memory > 'maxmemory'."), 503),
    (InvalidRequest("unconfigured table tweets"), 500),
    (redis_reply("WRONGTYPE Operation against a key holding the wrong kind of value"), 500),
])
def test_a_store_error_escaping_the_guards_is_a_503_only_if_it_is_an_outage(client, ports,
                                                                            exc, status):
    ports.tweets = FailingTweets(exc)
    resp = client.get("/authors/7/tweets")
    assert resp.status_code == status and resp.mimetype == "application/problem+json"
    assert ("Retry-After" in resp.headers) == (status == 503)

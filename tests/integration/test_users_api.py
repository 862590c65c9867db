"""The users HTTP API against the real Postgres and Redis of the test profile."""

from __future__ import annotations

import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from common import config as common_config
from common import jwks, topics
from common.events import Event
from users.adapters.redis_cache import TOMBSTONE, profile_key

PASSWORD = "correct horse battery"


@pytest.fixture
def client(users_app):
    return users_app.test_client()


@pytest.fixture
def wiring(users_app):
    return users_app.extensions["users"]


def unique(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def register(client, username: str | None = None, **extra) -> dict:
    resp = client.post("/users", json={"username": username or unique(), "password": PASSWORD,
                                       **extra})
    assert resp.status_code == 201, resp.json
    return resp.json


def as_user(user: dict, **headers) -> dict:
    return {"X-User-Id": user["id"], **headers}


def etag(client, user: dict) -> str:
    """The user's ETag as a read answers it now."""
    return client.get(f"/users/by-id/{user['id']}").headers["ETag"]


def sql(wiring, query: str, params=()) -> list[tuple]:
    with wiring.ports.users.pool.connection() as conn:
        return conn.execute(query, params).fetchall()


# ------------------------------------------------------------------ accounts, sessions


def test_registering_returns_the_user_with_string_ids_and_an_etag(client):
    name = unique()
    resp = client.post("/users", json={"username": name, "password": PASSWORD,
                                       "display_name": "Alice A."})
    assert resp.status_code == 201
    body = resp.json
    assert set(body) == {"id", "username", "display_name", "bio", "followers_count",
                         "following_count", "created_at"}
    assert isinstance(body["id"], str) and int(body["id"]) > 0
    assert (body["username"], body["display_name"], body["bio"]) == (name, "Alice A.", "")
    assert (body["followers_count"], body["following_count"]) == (0, 0)
    assert resp.headers["ETag"].startswith('"1-')


def test_registering_a_taken_username_is_a_409_problem(client):
    name = register(client)["username"]
    resp = client.post("/users", json={"username": name, "password": PASSWORD})
    assert resp.status_code == 409
    assert resp.mimetype == "application/problem+json"


def test_registering_invalid_input_is_a_422_listing_the_fields(client):
    resp = client.post("/users", json={"username": "No Caps", "password": "short",
                                       "display_name": "x" * 51})
    assert resp.status_code == 422
    assert {e["field"] for e in resp.json["errors"]} == {"username", "password", "display_name"}
    assert client.post("/users", data="not json").status_code == 422


def test_a_session_token_is_signed_for_the_gateway(client):
    user = register(client)
    resp = client.post("/sessions", json={"username": user["username"], "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.json["token_type"] == "Bearer" and resp.json["expires_in"] == 3600
    token = resp.json["access_token"]
    published = jwks.read_key_set((common_config.jwt_keys_dir() / "jwks.json").read_text())
    key = published[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key, algorithms=["EdDSA"], issuer=jwks.ISSUER,
                        audience=jwks.AUDIENCE)
    assert (claims["sub"], claims["username"]) == (user["id"], user["username"])
    assert claims["exp"] - claims["iat"] == 3600


def test_a_wrong_password_and_an_unknown_user_are_the_same_401(client):
    user = register(client)
    wrong = client.post("/sessions", json={"username": user["username"], "password": "nope nope"})
    unknown = client.post("/sessions", json={"username": unique(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json


# ------------------------------------------------------------------------ profiles


def test_a_user_reads_the_same_by_username_and_by_id(client):
    user = register(client)
    by_name = client.get(f"/users/{user['username']}")
    by_id = client.get(f"/users/by-id/{user['id']}")
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json == by_id.json == user
    assert by_name.headers["ETag"] == by_id.headers["ETag"]
    assert by_name.headers["ETag"].startswith('"1-')


def test_unknown_users_are_404(client):
    assert client.get(f"/users/{unique()}").status_code == 404
    assert client.get("/users/by-id/1").status_code == 404
    assert client.get("/users/by-id/not-a-number").status_code == 404


def test_an_edit_with_the_current_etag_returns_the_new_one(client):
    user = register(client)
    resp = client.patch(f"/users/{user['id']}", json={"bio": "hello", "display_name": "Al"},
                        headers=as_user(user, **{"If-Match": etag(client, user)}))
    assert resp.status_code == 200
    assert (resp.json["bio"], resp.json["display_name"]) == ("hello", "Al")
    assert resp.headers["ETag"].startswith('"2-')
    assert client.get(f"/users/{user['username']}").headers["ETag"] == resp.headers["ETag"]


def test_an_edit_with_a_stale_etag_is_a_412(client):
    user = register(client)
    headers = as_user(user, **{"If-Match": etag(client, user)})
    assert client.patch(f"/users/{user['id']}", json={"bio": "a"}, headers=headers).status_code == 200
    resp = client.patch(f"/users/{user['id']}", json={"bio": "b"}, headers=headers)
    assert resp.status_code == 412
    assert client.get(f"/users/{user['username']}").json["bio"] == "a"


def test_an_edit_without_if_match_is_a_428(client):
    user = register(client)
    resp = client.patch(f"/users/{user['id']}", json={"bio": "x"}, headers=as_user(user))
    assert resp.status_code == 428


def test_only_the_user_may_edit_their_profile(client):
    user, other = register(client), register(client)
    url, body = f"/users/{user['id']}", {"bio": "x"}
    assert client.patch(url, json=body, headers={"If-Match": "*"}).status_code == 401
    assert client.patch(url, json=body, headers=as_user(other, **{"If-Match": "*"})
                        ).status_code == 403


def test_an_invalid_edit_is_a_422(client):
    user = register(client)
    resp = client.patch(f"/users/{user['id']}", json={"bio": "b" * 161, "username": "x"},
                        headers=as_user(user, **{"If-Match": etag(client, user)}))
    assert resp.status_code == 422
    assert {e["field"] for e in resp.json["errors"]} == {"bio", "username"}


def test_a_cached_profile_is_dropped_when_it_changes(client, wiring):
    user, fan = register(client), register(client)
    client.get(f"/users/{user['username']}")  # fills the cache
    redis = wiring.ports.profiles.client
    assert redis.get(profile_key(int(user["id"]))) is not None
    client.patch(f"/users/{user['id']}", json={"display_name": "Renamed"},
                 headers=as_user(user, **{"If-Match": "*"}))
    assert redis.get(profile_key(int(user["id"]))) == TOMBSTONE
    assert client.get(f"/users/{user['username']}").json["display_name"] == "Renamed"
    assert client.put(f"/users/{fan['id']}/following/{user['username']}",
                      headers=as_user(fan)).status_code == 204
    assert redis.get(profile_key(int(user["id"]))) == TOMBSTONE
    assert client.get(f"/users/{user['username']}").json["followers_count"] == 1


# --------------------------------------------------------------------------- graph


def follow(client, follower: dict, followee: dict):
    return client.put(f"/users/{follower['id']}/following/{followee['username']}",
                      headers=as_user(follower))


def unfollow(client, follower: dict, followee: dict):
    return client.delete(f"/users/{follower['id']}/following/{followee['username']}",
                         headers=as_user(follower))


def counts(client, user: dict) -> tuple[int, int]:
    body = client.get(f"/users/by-id/{user['id']}").json
    return body["followers_count"], body["following_count"]


def test_a_second_follow_changes_nothing(client, wiring):
    alice, bob = register(client), register(client)
    assert follow(client, alice, bob).status_code == 204
    assert follow(client, alice, bob).status_code == 204
    assert counts(client, bob) == (1, 0) and counts(client, alice) == (0, 1)
    rows = sql(wiring, "SELECT payload FROM outbox WHERE topic = %s AND key = %s ORDER BY id",
               (wiring.config.topic(topics.FOLLOWS), alice["id"]))
    assert len(rows) == 1


def test_unfollowing_is_idempotent_too(client):
    alice, bob = register(client), register(client)
    follow(client, alice, bob)
    assert unfollow(client, alice, bob).status_code == 204
    assert unfollow(client, alice, bob).status_code == 204
    assert counts(client, bob) == (0, 0) and counts(client, alice) == (0, 0)


def test_following_yourself_or_nobody_fails(client):
    alice = register(client)
    assert follow(client, alice, alice).status_code == 422
    assert follow(client, alice, {"username": unique()}).status_code == 404
    assert unfollow(client, alice, {"username": unique()}).status_code == 404
    resp = client.put(f"/users/{alice['id']}/following/{alice['username']}")
    assert resp.status_code == 401


def test_a_follow_writes_its_event_to_the_outbox(client, wiring):
    alice, bob = register(client), register(client)
    follow(client, alice, bob)
    unfollow(client, alice, bob)
    rows = sql(wiring, "SELECT topic, payload FROM outbox WHERE key = %s AND topic <> %s "
                       "ORDER BY id", (alice["id"], wiring.config.topic(topics.USERS)))
    assert [r[0] for r in rows] == ["test.follows.v1"] * 2
    assert [r[1]["type"] for r in rows] == ["UserFollowed", "UserUnfollowed"]
    for _, envelope in rows:
        assert envelope["payload"] == {"follower_id": alice["id"], "followee_id": bob["id"]}
        assert envelope["version"] == 1 and envelope["event_id"] and envelope["occurred_at"]


def test_a_follow_whose_event_cannot_be_written_leaves_no_trace(client, wiring, monkeypatch):
    alice, bob = register(client), register(client)
    repo = wiring.ports.users

    def broken_outbox(conn, *args):
        conn.execute("SELECT 1/0")

    monkeypatch.setattr(repo, "_append_outbox", broken_outbox)
    assert follow(client, alice, bob).status_code == 500
    monkeypatch.undo()
    assert sql(wiring, "SELECT 1 FROM follows WHERE follower_id = %s", (int(alice["id"]),)) == []
    assert counts(client, bob) == (0, 0) and counts(client, alice) == (0, 0)


# ------------------------------------------------------------------- users events


def user_events(wiring, user: dict) -> list[tuple[dict, dict]]:
    """The envelopes (parsed and checked) and headers the outbox holds for `user`, in order."""
    rows = sql(wiring, "SELECT payload, headers FROM outbox WHERE topic = %s AND key = %s "
                       "ORDER BY id", (wiring.config.topic(topics.USERS), user["id"]))
    return [(Event.from_json(json.dumps(payload)), headers) for payload, headers in rows]


def test_registering_writes_user_registered_to_the_outbox(client, wiring):
    named = register(client, display_name="Ada L.")
    plain = register(client)  # no display name: the username stands in, as the API shows
    for user, display_name in ((named, "Ada L."), (plain, plain["username"])):
        (event, _), = user_events(wiring, user)
        assert event.type == "UserRegistered"
        assert event.payload == {"user_id": user["id"], "username": user["username"],
                                 "display_name": display_name, "version": 1}
        assert event.payload["display_name"] == user["display_name"]


def test_the_event_carries_the_request_id_of_the_request_that_caused_it(client, wiring):
    resp = client.post("/users", json={"username": unique(), "password": PASSWORD},
                       headers={"X-Request-ID": "req-users-events"})
    (_, headers), = user_events(wiring, resp.json)
    assert headers["request_id"] == "req-users-events"


def test_a_profile_edit_writes_profile_changed_at_the_new_version(client, wiring):
    user = register(client)
    url, first = f"/users/{user['id']}", etag(client, user)
    assert client.patch(url, json={"display_name": "Renamed"},
                        headers=as_user(user, **{"If-Match": first})).status_code == 200
    assert client.patch(url, json={"bio": "bio only"},
                        headers=as_user(user, **{"If-Match": "*"})).status_code == 200
    assert client.patch(url, json={"display_name": "stale"},
                        headers=as_user(user, **{"If-Match": first})).status_code == 412
    assert client.patch(url, json={}, headers=as_user(user, **{"If-Match": "*"})
                        ).status_code == 200  # no change, no event
    events = [event for event, _ in user_events(wiring, user)]
    assert [e.type for e in events] == ["UserRegistered", "ProfileChanged", "ProfileChanged"]
    assert [e.payload for e in events[1:]] == [
        {"user_id": user["id"], "username": user["username"], "display_name": "Renamed",
         "version": 2},
        {"user_id": user["id"], "username": user["username"], "display_name": "Renamed",
         "version": 3},
    ]


def test_a_taken_username_writes_no_event(client, wiring):
    user = register(client)
    assert client.post("/users", json={"username": user["username"], "password": PASSWORD}
                       ).status_code == 409
    assert len(user_events(wiring, user)) == 1


def test_a_change_whose_event_cannot_be_written_is_not_made(client, wiring, monkeypatch):
    user = register(client)
    name = unique()

    def broken_outbox(conn, *args):
        conn.execute("SELECT 1/0")

    monkeypatch.setattr(wiring.ports.users, "_append_outbox", broken_outbox)
    assert client.post("/users", json={"username": name, "password": PASSWORD}
                       ).status_code == 500
    assert client.patch(f"/users/{user['id']}", json={"display_name": "Never"},
                        headers=as_user(user, **{"If-Match": "*"})).status_code == 500
    monkeypatch.undo()
    assert sql(wiring, "SELECT 1 FROM users WHERE username = %s", (name,)) == []
    resp = client.get(f"/users/by-id/{user['id']}")
    assert resp.json["display_name"] == user["display_name"]
    assert resp.headers["ETag"].startswith('"1-')
    assert len(user_events(wiring, user)) == 1


def test_concurrent_follows_and_unfollows_leave_exact_counts(users_app, client, wiring):
    users = [register(client) for _ in range(12)]
    pairs = [(a, b) for a in users for b in users if a is not b]
    rng = random.Random(7)
    # Every pair many times over, in both directions at once, follows and unfollows mixed:
    # duplicates must not double-count and opposite lock orders must not deadlock.
    work = [(rng.choice([follow, follow, unfollow]), a, b) for a, b in pairs for _ in range(3)]
    rng.shuffle(work)

    def run(item):
        action, a, b = item
        return action(users_app.test_client(), a, b).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(run, work))
    assert set(statuses) == {204}
    ids = [int(u["id"]) for u in users]
    rows = sql(wiring, """
        SELECT u.id, u.followers_count, u.following_count,
               (SELECT count(*) FROM follows f WHERE f.followee_id = u.id),
               (SELECT count(*) FROM follows f WHERE f.follower_id = u.id)
        FROM users u WHERE u.id = ANY(%s)""", (ids,))
    assert len(rows) == len(users)
    for _, followers, following, real_followers, real_following in rows:
        assert (followers, following) == (real_followers, real_following)
    for user in users:  # what the API serves agrees with the graph (no stale cache)
        uid = int(user["id"])
        real = next(r for r in rows if r[0] == uid)
        assert counts(client, user) == (real[3], real[4])


def test_many_followers_of_one_user_all_count(users_app, client):
    star = register(client)
    fans = [register(client) for _ in range(30)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda f: follow(users_app.test_client(), f, star).status_code,
                                 fans * 2))
    assert set(statuses) == {204}, statuses
    assert counts(client, star) == (30, 0)


def test_follower_pages_walk_everyone_once_newest_first(client):
    star = register(client)
    fans = [register(client) for _ in range(23)]
    for fan in fans:
        follow(client, fan, star)
    seen, cursor, pages = [], None, 0
    while True:
        resp = client.get(f"/users/{star['username']}/followers",
                          query_string={"limit": 5, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200
        seen += [u["id"] for u in resp.json["items"]]
        pages += 1
        cursor = resp.json["next_cursor"]
        if cursor is None:
            break
        # Someone following mid-walk appears at the front, never inside the walk.
        if pages == 2:
            follow(client, register(client), star)
    assert seen == [f["id"] for f in reversed(fans)]
    assert pages == 5


def test_following_lists_whom_a_user_follows(client):
    fan = register(client)
    stars = [register(client) for _ in range(3)]
    for star in stars:
        follow(client, fan, star)
    resp = client.get(f"/users/{fan['username']}/following")
    assert [u["id"] for u in resp.json["items"]] == [s["id"] for s in reversed(stars)]
    assert resp.json["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "cursor=garbage"])
def test_bad_paging_parameters_are_a_422(client, query):
    user = register(client)
    assert client.get(f"/users/{user['username']}/followers?{query}").status_code == 422


def test_lists_of_unknown_users_are_404(client):
    assert client.get(f"/users/{unique()}/followers").status_code == 404
    assert client.get(f"/users/{unique()}/following").status_code == 404


# ------------------------------------------------------------------------ internal


def test_follower_ids_page_ascending_with_after(client):
    star = register(client)
    fans = [register(client) for _ in range(7)]
    for fan in fans:
        follow(client, fan, star)
    expected = sorted((f["id"] for f in fans), key=int)
    got, after = [], None
    while True:
        resp = client.get(f"/internal/users/{star['id']}/follower-ids",
                          query_string={"limit": 3, **({"after": after} if after else {})})
        assert resp.status_code == 200 and resp.json["followers_count"] == 7
        got += resp.json["ids"]
        after = resp.json["next_after"]
        if after is None:
            break
    assert got == expected
    assert client.get(f"/internal/users/{star['id']}/follower-ids?limit=10001").status_code == 422
    assert client.get("/internal/users/1/follower-ids").status_code == 404


def test_followee_ids_can_keep_only_popular_authors(client):
    fan, star, nobody = register(client), register(client), register(client)
    follow(client, fan, star)
    follow(client, fan, nobody)
    follow(client, nobody, star)
    all_ids = client.get(f"/internal/users/{fan['id']}/followee-ids").json["ids"]
    assert sorted(all_ids, key=int) == sorted([star["id"], nobody["id"]], key=int)
    popular = client.get(f"/internal/users/{fan['id']}/followee-ids?min_followers=2").json
    assert popular == {"ids": [star["id"]]}


def test_followee_ids_without_a_minimum_list_every_followee_up_to_the_limit(client):
    fan = register(client)
    authors = [register(client) for _ in range(5)]  # one follower each: nobody popular
    for author in authors:
        follow(client, fan, author)
    expected = sorted((a["id"] for a in authors), key=int)
    path = f"/internal/users/{fan['id']}/followee-ids"
    assert client.get(path).json["ids"] == expected
    assert client.get(f"{path}?min_followers=0&limit=10000").json["ids"] == expected
    assert client.get(f"{path}?limit=3").json["ids"] == expected[:3]
    assert client.get(f"{path}?limit=10001").status_code == 422


def test_the_redis_pool_is_bounded_by_the_setting(users_app, wiring):
    pool = wiring.ports.profiles.client.connection_pool
    assert pool.max_connections == wiring.config.redis_pool_max
    assert pool.timeout == wiring.config.redis_pool_timeout


def test_readiness_checks_postgres_and_redis(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == ["postgres", "redis"]

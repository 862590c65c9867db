"""Celebrity status in users, against the test profile's real Postgres: follows that cross
the threshold record the status and announce it in the same transaction; the followees a
home-timeline read merges include whoever was ever a celebrity."""

from __future__ import annotations

import json
import uuid

import pytest

from common import events, topics
from common.events import Event

PASSWORD = "correct horse battery"


@pytest.fixture
def client(users_app):
    return users_app.test_client()


@pytest.fixture
def wiring(users_app):
    return users_app.extensions["users"]


def register(client) -> dict:
    resp = client.post("/users", json={"username": f"cel_{uuid.uuid4().hex[:12]}",
                                       "password": PASSWORD})
    assert resp.status_code == 201, resp.json
    return resp.json


def follow(client, fan: dict, star: dict) -> None:
    resp = client.put(f"/users/{fan['id']}/following/{star['username']}",
                      headers={"X-User-Id": fan["id"]})
    assert resp.status_code == 204, resp.json


def unfollow(client, fan: dict, star: dict) -> None:
    resp = client.delete(f"/users/{fan['id']}/following/{star['username']}",
                         headers={"X-User-Id": fan["id"]})
    assert resp.status_code == 204, resp.json


def sql(wiring, query: str, params=()) -> list[tuple]:
    with wiring.ports.users.pool.connection() as conn:
        return conn.execute(query, params).fetchall()


def announcements(wiring, user_id: str) -> list[dict]:
    """The CelebrityStatusChanged payloads of a user in the outbox, oldest first."""
    rows = sql(wiring, "SELECT topic, payload FROM outbox WHERE key = %s ORDER BY id",
               (f"{user_id}/celebrity",))
    found = []
    for topic, payload in rows:
        event = Event.from_json(json.dumps(payload))
        assert topic == wiring.config.topic(topics.USERS)
        assert event.type == events.CELEBRITY_STATUS_CHANGED
        found.append(event.payload)
    return found


def status(wiring, user_id: str) -> tuple[bool, int]:
    [(celebrity, version)] = sql(wiring, "SELECT celebrity, celebrity_version FROM users "
                                         "WHERE id = %s", (int(user_id),))
    return celebrity, version


def test_crossing_the_threshold_each_way_is_recorded_and_announced_once(client, wiring):
    threshold = wiring.config.celebrity_threshold
    assert threshold <= 10, "the test profile's threshold is small"
    star = register(client)
    fans = [register(client) for _ in range(threshold + 1)]
    for fan in fans[:threshold - 1]:
        follow(client, fan, star)
    assert status(wiring, star["id"]) == (False, 0) and announcements(wiring, star["id"]) == []
    follow(client, fans[threshold - 1], star)  # reaches the threshold
    follow(client, fans[threshold], star)  # over it: no change of status
    unfollow(client, fans[threshold], star)
    unfollow(client, fans[0], star)  # below again
    follow(client, fans[0], star)  # and back
    assert status(wiring, star["id"]) == (True, 3)
    assert announcements(wiring, star["id"]) == [
        {"user_id": star["id"], "celebrity": True, "version": 1, "followers_count": threshold},
        {"user_id": star["id"], "celebrity": False, "version": 2,
         "followers_count": threshold - 1},
        {"user_id": star["id"], "celebrity": True, "version": 3, "followers_count": threshold},
    ]


def test_a_former_celebrity_stays_among_the_followees_merged_at_read_time(client, wiring):
    threshold = wiring.config.celebrity_threshold
    star, ordinary = register(client), register(client)
    fans = [register(client) for _ in range(threshold)]
    for fan in fans:
        follow(client, fan, star)
    follow(client, fans[0], ordinary)  # never a celebrity: fanned out, never merged
    unfollow(client, fans[-1], star)  # below the threshold now, a celebrity before
    reader = fans[0]["id"]
    path = f"/internal/users/{reader}/followee-ids?min_followers={threshold}"
    assert client.get(path).json == {"ids": []}  # by the count alone: nobody
    assert client.get(f"{path}&pulled=true").json == {"ids": [star["id"]]}
    assert client.get(f"{path}&pulled=maybe").status_code == 422


def test_counts_loaded_past_the_service_are_settled_by_the_sql_function(client, wiring):
    threshold = wiring.config.celebrity_threshold
    loaded = register(client)
    with wiring.ports.users.pool.connection() as conn:  # a bulk load, past the service
        conn.execute("UPDATE users SET followers_count = %s WHERE id = %s",
                     (threshold + 3, int(loaded["id"])))
    topic = wiring.config.topic(topics.USERS)
    [(changed,)] = sql(wiring, "SELECT users_settle_celebrities(%s, %s, %s)",
                       (topic, threshold, [int(loaded["id"])]))
    [(again,)] = sql(wiring, "SELECT users_settle_celebrities(%s, %s, %s)",
                     (topic, threshold, [int(loaded["id"])]))
    assert (changed, again) == (1, 0)
    assert status(wiring, loaded["id"]) == (True, 1)
    assert announcements(wiring, loaded["id"]) == [
        {"user_id": loaded["id"], "celebrity": True, "version": 1,
         "followers_count": threshold + 3}]

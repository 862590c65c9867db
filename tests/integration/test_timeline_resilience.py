"""The timeline app's fallbacks and fail-fast answers, against the real Cassandra.

Redis is made unreachable by pointing the app at a port nobody listens on; breakers are
fresh per test, so one test's open breaker never leaks into another.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import replace

import pytest
import redis

from common import ids, resilience
from timeline.adapters import cassandra_store, users_client
from common.client import peer_breaker
from timeline.adapters.guard import outage_breaker
from timeline.domain.errors import DependencyUnavailable
from timeline.domain.model import HOME_REBUILT as REBUILT
from timeline.entrypoints.app import create_app


def fresh_breakers() -> dict[str, resilience.Breaker]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "cassandra": outage_breaker(f"cassandra-{suffix}", "cassandra", fail_max=3,
                                    reset_timeout=30),
        "redis": outage_breaker(f"redis-{suffix}", "redis", fail_max=3, reset_timeout=30),
        "users": peer_breaker(f"users-{suffix}", fail_max=3, reset_timeout=30),
    }


@pytest.fixture(scope="module")
def healthy(timeline_cfg, followees):
    app = create_app(timeline_cfg, followees=followees, breakers=fresh_breakers())
    yield app.test_client()
    app.extensions["timeline"].close()


@pytest.fixture
def without_redis(timeline_cfg, followees):
    """The app with Redis unreachable (nothing listens on the port)."""
    dead = redis.Redis(host="127.0.0.1", port=9, socket_timeout=0.5, socket_connect_timeout=0.5)
    # A fixed worker id: leasing one needs Redis, which this app cannot reach.
    app = create_app(timeline_cfg, followees=followees, redis=dead, breakers=fresh_breakers(),
                     ids=ids.IdGenerator(1023))
    yield app
    app.extensions["timeline"].close()


def new_user_id() -> int:
    return random.randrange(1 << 40, 1 << 62)


def post(client, author: int, text: str, key: str | None = None):
    headers = {"X-User-Id": str(author), **({"Idempotency-Key": key} if key else {})}
    return client.post("/tweets", json={"text": text}, headers=headers)


def test_without_redis_the_home_timeline_is_rebuilt_from_followees(healthy, without_redis,
                                                                   followees):
    reader, friend, stranger = new_user_id(), new_user_id(), new_user_id()
    own = post(healthy, reader, "mine").json["id"]
    theirs = [post(healthy, friend, f"friend {i}").json["id"] for i in range(3)]
    post(healthy, stranger, "not followed")
    followees.following[reader] = [friend]
    client = without_redis.test_client()
    first = client.get("/timeline?limit=3", headers={"X-User-Id": str(reader)})
    assert first.status_code == 200
    assert first.headers["Murmur-Degraded"] == REBUILT
    rest = client.get(f"/timeline?limit=3&cursor={first.json['next_cursor']}",
                      headers={"X-User-Id": str(reader)})
    assert rest.headers["Murmur-Degraded"] == REBUILT
    ids_seen = [t["id"] for t in first.json["items"] + rest.json["items"]]
    assert ids_seen == sorted([own, *theirs], key=int, reverse=True)
    assert rest.json["next_cursor"] is None


def test_without_redis_a_post_is_accepted_and_readable_from_the_store(without_redis, healthy):
    client = without_redis.test_client()
    author = new_user_id()
    resp = post(client, author, "through the outage")
    assert resp.status_code == 201
    assert healthy.get(f"/tweets/{resp.json['id']}").json == resp.json
    assert client.get(f"/tweets/{resp.json['id']}").json == resp.json
    session = cassandra_store.CassandraSession(without_redis.extensions["timeline"].config.stores)
    try:
        rows = session.read("SELECT tweet_id FROM murmur_test.user_tweets WHERE author_id = %s",
                            (author,))
    finally:
        session.shutdown()
    assert [str(r.tweet_id) for r in rows] == [resp.json["id"]]


def test_without_redis_a_post_with_an_idempotency_key_is_a_503(without_redis):
    resp = post(without_redis.test_client(), new_user_id(), "exactly once", key="k-1")
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert int(resp.headers["Retry-After"]) >= 1


def test_an_open_cassandra_breaker_answers_503_with_retry_after_at_once(timeline_cfg, followees):
    breakers = fresh_breakers()
    app = create_app(timeline_cfg, followees=followees, breakers=breakers)
    try:
        client = app.test_client()
        author = new_user_id()
        assert client.get(f"/authors/{author}/tweets").status_code == 200
        breakers["cassandra"].open()
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            resp = client.get(f"/authors/{author}/tweets")
            timings.append(time.perf_counter() - started)
            assert resp.status_code == 503
            assert resp.mimetype == "application/problem+json"
            assert 1 <= int(resp.headers["Retry-After"]) <= 30
        timings.sort()
        print(f"open breaker: p50 {timings[10] * 1000:.2f} ms, max {timings[-1] * 1000:.2f} ms")
        assert timings[10] < 0.01
    finally:
        app.extensions["timeline"].close()


def test_cassandra_reads_never_wait_past_the_deadline(healthy, timeline_cfg):
    session = cassandra_store.CassandraSession(timeline_cfg.stores, request_timeout=5)
    try:
        token = resilience.start_deadline(None, -1)
        try:
            with pytest.raises(resilience.DeadlineExceeded):
                session.read("SELECT release_version FROM system.local")
        finally:
            resilience.end_deadline(token)
        assert session.read("SELECT release_version FROM system.local")
    finally:
        session.shutdown()


def test_an_unreachable_cassandra_is_unavailable_not_an_error(timeline_cfg):
    session = cassandra_store.CassandraSession(replace(timeline_cfg.stores, cassandra_port=9),
                                               request_timeout=1)
    try:
        with pytest.raises(DependencyUnavailable):
            session.read("SELECT release_version FROM system.local")
    finally:
        session.shutdown()

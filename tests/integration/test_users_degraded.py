"""The users HTTP API with Postgres unreachable: cached profiles, fast 503s, recovery.

Two apps share the test profile's real Redis: one on the real Postgres fills the cache, the
other has its Postgres pool pointed at a closed port, as if the database had stopped. Each
gets breakers of its own, so nothing here affects another test's app.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid

import psycopg
import pytest

from common.resilience import Breaker, CircuitBreakerError
from users import config as users_config
from users.adapters.postgres import postgres_breaker
from users.adapters.redis_cache import redis_breaker
from users.entrypoints.app import create_app
from users.bootstrap import bootstrap

PASSWORD = "correct horse battery"
DEGRADED = "Murmur-Degraded"


def cheap_config(**changes) -> users_config.UsersConfig:
    cfg = users_config.load()
    assert cfg.stores.pg_database == "murmur_test", "run with MURMUR_PROFILE=test"
    return dataclasses.replace(cfg, argon2_time_cost=1, argon2_memory_kib=8192,
                               argon2_parallelism=1, **changes)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens once the socket is closed


def breakers(name: str, reset_timeout: float = 60.0) -> dict[str, Breaker]:
    suffix = uuid.uuid4().hex[:6]
    return {
        "postgres_breaker": postgres_breaker(name=f"postgres-{name}-{suffix}", fail_max=3,
                                             reset_timeout=reset_timeout),
        "redis_breaker": redis_breaker(name=f"redis-{name}-{suffix}"),
    }


@pytest.fixture(scope="module")
def healthy():
    app = create_app(service=bootstrap(cheap_config(), **breakers("healthy")))
    yield app.test_client()
    app.extensions["users"].close()


@pytest.fixture()
def down():
    """An app whose Postgres refuses every connection (pool wait kept short)."""
    cfg = cheap_config(pg_pool_min=0, pg_pool_timeout=0.3)
    cfg = dataclasses.replace(cfg, stores=dataclasses.replace(cfg.stores, pg_port=closed_port()))
    wiring = bootstrap(cfg, **breakers("down"))
    app = create_app(service=wiring)
    yield app.test_client(), wiring
    wiring.close()


def register_and_cache(client) -> dict:
    """A new user whose profile the read through the healthy app has cached."""
    resp = client.post("/users", json={"username": f"d_{uuid.uuid4().hex[:12]}",
                                       "password": PASSWORD})
    assert resp.status_code == 201, resp.json
    assert client.get(f"/users/{resp.json['username']}").status_code == 200
    return resp.json


def open_breaker(client, user: dict) -> None:
    """Writes that fail until the breaker opens (the down app counts 3 failures)."""
    for _ in range(3):
        resp = client.patch(f"/users/{user['id']}", json={"bio": "x"},
                            headers={"X-User-Id": user["id"], "If-Match": "*"})
        assert resp.status_code == 503 and resp.headers["Retry-After"]


def test_a_cached_profile_is_served_degraded_once_the_breaker_is_open(healthy, down):
    client, _ = down
    alice = register_and_cache(healthy)
    before = client.get(f"/users/{alice['username']}")
    assert before.status_code == 200 and DEGRADED not in before.headers  # a plain hit
    open_breaker(client, alice)
    for path in (f"/users/{alice['username']}", f"/users/by-id/{alice['id']}"):
        resp = client.get(path)
        assert resp.status_code == 200
        assert resp.headers[DEGRADED] == "profile-from-cache"
        assert resp.json["username"] == alice["username"] and resp.json["id"] == alice["id"]
        assert resp.headers["ETag"] == before.headers["ETag"]


def test_an_uncached_profile_is_a_503_with_retry_after(healthy, down):
    client, _ = down
    resp = healthy.post("/users", json={"username": f"d_{uuid.uuid4().hex[:12]}",
                                        "password": PASSWORD})
    bob = resp.json
    for path in (f"/users/{bob['username']}", f"/users/by-id/{bob['id']}"):
        resp = client.get(path)
        assert resp.status_code == 503, resp.json
        assert resp.mimetype == "application/problem+json" and resp.headers["Retry-After"]


def test_writes_are_a_503_in_milliseconds_once_the_breaker_is_open(healthy, down):
    client, wiring = down
    alice, bob = register_and_cache(healthy), register_and_cache(healthy)
    open_breaker(client, alice)
    writes = [
        ("post", "/users", {"json": {"username": f"d_{uuid.uuid4().hex[:12]}",
                                     "password": PASSWORD}}),
        ("post", "/sessions", {"json": {"username": alice["username"], "password": PASSWORD}}),
        ("patch", f"/users/{alice['id']}", {"json": {"bio": "x"},
                                            "headers": {"X-User-Id": alice["id"],
                                                        "If-Match": "*"}}),
        ("put", f"/users/{alice['id']}/following/{bob['username']}",
         {"headers": {"X-User-Id": alice["id"]}}),
        ("delete", f"/users/{alice['id']}/following/{bob['username']}",
         {"headers": {"X-User-Id": alice["id"]}}),
        ("get", f"/internal/users/{alice['id']}/follower-ids", {}),
        ("get", f"/internal/users/{alice['id']}/followee-ids", {}),
    ]
    requests_before = wiring.ports.users.pool.get_stats().get("requests_num", 0)
    for method, path, kwargs in writes:
        started = time.perf_counter()
        resp = getattr(client, method)(path, **kwargs)
        elapsed = time.perf_counter() - started
        assert resp.status_code == 503, (method, path, resp.json)
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.mimetype == "application/problem+json"
        print(f"{method.upper()} {path.split('/')[1]}: 503 in {elapsed * 1000:.1f} ms")
        assert elapsed < 0.05, f"{method} {path} took {elapsed * 1000:.1f} ms"
    after = wiring.ports.users.pool.get_stats().get("requests_num", 0)
    assert after == requests_before, "an open breaker must not ask the pool"


def test_writes_work_again_once_the_breaker_half_opens_on_a_live_database(healthy):
    """The breaker half-opens after its reset timeout and one good trial closes it."""
    wiring = bootstrap(cheap_config(), **breakers("recovering", reset_timeout=0.5))
    client = create_app(service=wiring).test_client()
    try:
        alice = register_and_cache(healthy)
        breaker = wiring.ports.users.breaker
        for _ in range(3):
            fail_once(breaker)
        assert breaker.is_open

        def patch():
            return client.patch(f"/users/{alice['id']}", json={"bio": "back"},
                                headers={"X-User-Id": alice["id"], "If-Match": "*"})

        assert patch().status_code == 503
        started = time.monotonic()
        while (status := patch().status_code) != 200:
            assert status == 503
            assert time.monotonic() - started < 10, "writes did not recover within 10 s"
            time.sleep(0.05)
        assert not breaker.is_open
        assert client.get(f"/users/{alice['username']}").json["bio"] == "back"
    finally:
        wiring.close()


def fail_once(breaker: Breaker) -> None:
    """One failed call through `breaker`, as an unreachable database gives."""

    def refused():
        raise psycopg.OperationalError("connection refused")

    with pytest.raises((psycopg.OperationalError, CircuitBreakerError)):
        breaker.call(refused)

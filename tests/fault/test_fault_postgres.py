"""Postgres stopped: profiles are read from the cache, writes fail fast, then recover.

Steady-state hypothesis: a profile someone has read is answered 200 with its data, and
profile edits and follows succeed. While Postgres is stopped, that profile still answers
200 with the same data, marked `Murmur-Degraded: profile-from-cache`; an edit and a
follow answer 503 problem+json with `Retry-After`, quickly (under 10 ms at the users
service once its breaker is open; asserted under 1 s end to end for a slow CI machine);
within 10 s of Postgres being ready again, writes succeed, and the follows outbox relay
publishes again by itself.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import requests

from common import config
from conftest import wait_until
from fault._client import (API, DEGRADED, Api, Member, Stopwatch, ready, steady_again,
                           service_url)

FROM_CACHE = "profile-from-cache"
RECOVERY_TARGET = 10.0  # seconds after Postgres is ready (DESIGN §9)
FAST = 1.0  # seconds: the end-to-end bound asserted for a failing write


def read_profile(http: requests.Session, username: str) -> requests.Response:
    return http.get(f"{API}/users/{username}", timeout=10)


def edit_bio(http: requests.Session, member: Member, bio: str,
             etag: str = "*") -> requests.Response:
    return http.patch(f"{API}/users/me", json={"bio": bio}, timeout=10,
                      headers={**member.auth, "If-Match": etag})


def follow(http: requests.Session, follower: Member, followee: Member) -> requests.Response:
    return http.put(f"{API}/users/me/following/{followee.username}", headers=follower.auth,
                    timeout=10)


def timed(call) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    resp = call()
    return resp, time.perf_counter() - started


def assert_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text[:200])
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert int(resp.headers["Retry-After"]) >= 1


def open_users_breakers(user_id: str) -> None:
    """Call users' follower-ids (as fanout does) until every worker refuses at once.

    Internal reads like these, which have no fallback, are what meet the outage first in
    a running system; each users worker opens its Postgres breaker after a few failures."""
    url = f"{service_url('users')}/internal/users/{user_id}/follower-ids"

    def one() -> tuple[int, float]:
        resp, elapsed = timed(lambda: requests.get(url, timeout=10))
        return resp.status_code, elapsed

    with ThreadPoolExecutor(max_workers=8) as pool:
        def all_refuse_at_once() -> bool:
            answers = list(pool.map(lambda _: one(), range(16)))
            assert {status for status, _ in answers} == {503}, answers
            return all(elapsed < 0.1 for _, elapsed in answers)

        wait_until(all_refuse_at_once, timeout=60, interval=0,
                   message="every users worker refusing Postgres calls at once")


def write_until_it_succeeds(http: requests.Session, member: Member) -> float:
    """Retry an edit as a polite client does (waiting Retry-After) until it answers 200;
    the seconds it took."""
    since_ready = Stopwatch()
    while True:
        resp = edit_bio(http, member, "after the outage")
        if resp.status_code == 200:
            return since_ready()
        assert resp.status_code == 503, resp.text[:200]
        assert since_ready() < 60, "writes did not come back within 60 s"
        time.sleep(min(float(resp.headers.get("Retry-After", "1")), 5.0))


def outbox_published(follower_id: str, followee_id: str) -> bool:
    """Whether the follow's outbox row has been published to Kafka by the relay."""
    with psycopg.connect(config.stores().pg_conninfo) as conn:
        row = conn.execute(
            "SELECT bool_and(published_at IS NOT NULL) FROM outbox "
            "WHERE payload->'payload'->>'follower_id' = %s "
            "AND payload->'payload'->>'followee_id' = %s",
            (follower_id, followee_id)).fetchone()
    return bool(row and row[0])


def test_without_postgres_profiles_come_from_the_cache_and_writes_fail_fast(components):
    """Hypothesis (module docstring): cached profile 200 + degraded, writes 503 + Retry-After
    fast while Postgres is stopped; writes back within 10 s of its readiness."""
    api = Api()
    http = api.http
    try:
        alice, bob = api.sign_up("fault_pg_a"), api.sign_up("fault_pg_b")
        before = read_profile(http, alice.username)  # fills the profile cache
        assert before.status_code == 200 and DEGRADED not in before.headers, before.text
        profile, etag = before.json(), before.headers["ETag"]

        components.stop("postgres")
        try:
            open_users_breakers(alice.id)

            def served_from_cache() -> requests.Response | None:
                resp = read_profile(http, alice.username)
                assert resp.status_code == 200, resp.text[:200]
                return resp if resp.headers.get(DEGRADED) == FROM_CACHE else None

            resp = wait_until(served_from_cache, timeout=30,
                              message="the profile served from the cache, marked degraded")
            assert resp.json() == profile and resp.headers["ETag"] == etag

            edit, edit_time = timed(lambda: edit_bio(http, alice, "during the outage", etag))
            assert_unavailable(edit)
            fol, follow_time = timed(lambda: follow(http, alice, bob))
            assert_unavailable(fol)
            direct, direct_time = timed(lambda: requests.patch(
                f"{service_url('users')}/users/{alice.id}", json={"bio": "x"}, timeout=10,
                headers={"X-User-Id": alice.id, "If-Match": etag}))
            assert_unavailable(direct)
            print(f"\nwithout Postgres: PATCH /users/me 503 in {edit_time * 1000:.1f} ms, "
                  f"PUT follow 503 in {follow_time * 1000:.1f} ms (through nginx); "
                  f"PATCH at users itself 503 in {direct_time * 1000:.1f} ms")
            assert edit_time < FAST and follow_time < FAST and direct_time < FAST
        finally:
            components.start("postgres")  # returns once Postgres answers (ready)

        since_ready = Stopwatch()
        recovery = write_until_it_succeeds(http, alice)
        everywhere = steady_again(alice, since_ready, "Postgres returned")
        print(f"writes back {recovery:.2f} s after Postgres was ready, no worker's breaker "
              f"open after {everywhere:.2f} s (target {RECOVERY_TARGET:.0f} s)")
        assert everywhere <= RECOVERY_TARGET

        assert follow(http, alice, bob).status_code == 204
        after = read_profile(http, alice.username)
        assert after.status_code == 200 and after.json()["bio"] == "after the outage"
        relay = Stopwatch()
        wait_until(lambda: outbox_published(alice.id, bob.id), timeout=60,
                   message="the relay publishing the follow made after the outage")
        print(f"the outbox relay published the new follow within {relay():.2f} s")
        assert ready("users")
    finally:
        api.close()

"""The public system status through the edge, at rest and while real faults last: a
worker stopped, the network to Redis cut. Each fault is short and undone in `finally`:
the stack is shared."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from conftest import stackctl, wait_until

STATUS = "/system/status"
# Faults show within a few readings (one every ~2 s per gateway worker).
SHOWS_WITHIN = 30.0


def summary(api) -> dict[str, Any]:
    resp = api.get(STATUS)
    assert resp.status_code == 200, resp.text
    return resp.json()


def component(body: dict[str, Any], name: str) -> dict[str, str]:
    return next(c for c in body["components"] if c["name"] == name)


def until(api, holds: Callable[[dict[str, Any]], bool], message: str,
          timeout: float = SHOWS_WITHIN) -> dict[str, Any]:
    """The first summary for which `holds` is true; fails at the deadline."""
    found: dict[str, Any] = {}

    def check() -> bool:
        found.clear()
        found.update(summary(api))
        return holds(found)

    wait_until(check, timeout=timeout, interval=0.5, message=message)
    return found


def at_rest(body: dict[str, Any]) -> bool:
    return (body["status"] == "ok"
            and all(b["state"] == "closed" for b in body["breakers"]))


@contextmanager
def platform(*command: str, undo: tuple[str, ...]) -> Iterator[None]:
    """Run a platform command for the block's length; `undo` afterwards, whatever happens."""
    done = stackctl(*command, timeout=120)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield
    finally:
        undone = stackctl(*undo, timeout=180)
        assert undone.returncode == 0, undone.stdout + undone.stderr


def test_at_rest_every_component_is_up_and_every_breaker_closed(api) -> None:
    body = until(api, at_rest, "a system at rest")
    assert {c["name"]: c["status"] for c in body["components"]} == {
        name: "up" for name in ("nginx", "gateway", "users", "timeline", "fanout", "users-relay",
                                "timeline-relay", "timeline-authors", "postgres", "redis",
                                "cassandra", "kafka")}
    assert {b["process"] for b in body["breakers"]} >= {"gateway", "users", "timeline", "fanout"}
    assert {"from": "gateway", "to": "users"} in body["edges"]
    pipeline = body["pipeline"]
    assert isinstance(pipeline["consumer_lag"], int) and pipeline["consumer_lag"] >= 0
    assert isinstance(pipeline["outbox_backlog"], int)
    assert isinstance(pipeline["authors_consumer_lag"], int)


def test_the_summary_is_shared_for_two_seconds_and_holds_no_address(api) -> None:
    resp = api.get(STATUS)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Cache-Control"] == "max-age=2"
    text = json.dumps({k: v for k, v in resp.json().items() if k != "generated_at"})
    assert not re.search(r":\d", text), text
    assert "127.0.0.1" not in text and "http" not in text and "localhost" not in text


def test_a_post_shows_in_the_fanout_lag_and_the_caches(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    api.follow(bob, ada)
    api.tweet(ada)
    assert api.get("/timeline", headers=bob.auth).status_code == 200
    body = until(api, lambda b: b["pipeline"]["fanout_lag_seconds"] is not None
                 and any(c["requests"] > 0 for c in b["caches"]),
                 "a fan-out lag and cache lookups")
    assert 0 <= body["pipeline"]["fanout_lag_seconds"] < 60
    assert all(c["hit_ratio"] is None or 0 <= c["hit_ratio"] <= 1 for c in body["caches"])


def test_a_stopped_fanout_shows_down_and_up_again_once_started(api) -> None:
    until(api, lambda b: component(b, "fanout")["status"] == "up", "fanout up")
    with platform("stop", "test-fanout", undo=("start", "test-fanout")):
        body = until(api, lambda b: component(b, "fanout")["status"] == "down", "fanout down")
        assert component(body, "fanout")["detail"] == "not answering"
        assert body["status"] == "degraded"
        assert body["pipeline"]["consumer_lag"] is None
    until(api, lambda b: component(b, "fanout")["status"] == "up", "fanout up again")


def redis_shows_trouble(body: dict[str, Any]) -> bool:
    return (component(body, "redis")["status"] in ("degraded", "down")
            or any(b["name"].endswith(".redis") and b["state"] != "closed"
                   for b in body["breakers"]))


def test_redis_cut_off_shows_in_its_status_and_heals(api) -> None:
    until(api, lambda b: not redis_shows_trouble(b), "redis up")
    with platform("toxic", "cut", "redis", undo=("toxic", "heal", "redis")):
        body = until(api, redis_shows_trouble, "redis trouble shown")
        assert body["status"] == "degraded"
        assert "cannot reach it" in component(body, "redis")["detail"] or any(
            b["name"].endswith(".redis") and b["state"] != "closed" for b in body["breakers"])
    until(api, lambda b: not redis_shows_trouble(b), "redis up again")

"""One post's trace as a chain of spans: shared by the tests that follow a post from the
gateway through the outbox and Kafka into fanout's Redis write, whichever exporter carried
the spans (Zipkin's API or the span files; both give span-file records, see
local/trace_tree.py)."""

from __future__ import annotations

import time
from typing import Any

import requests

from conftest import wait_until
from fault.steady_load import API, sign_up

DEADLINE = 30.0  # for delivery, and again for the spans to be exported
# From fanout's consumer span up to the root, in this order (other spans may sit between).
EXPECTED_HOPS = [("fanout", "CONSUMER"), ("timeline-relay", "PRODUCER"),
                 ("timeline", "SERVER"), ("gateway", "SERVER")]


def post_and_deliver(text: str) -> tuple[str, float]:
    """An author with one follower posts `text` through nginx; returns (tweet id, seconds
    until the follower's home timeline held it)."""
    author, follower = sign_up("trace"), sign_up("trace")
    followed = requests.put(f"{API}/users/me/following/{author.username}",
                            headers=follower.auth, timeout=10)
    assert followed.status_code == 204, followed.text
    started = time.monotonic()
    posted = requests.post(f"{API}/tweets", json={"text": text}, headers=author.auth,
                           timeout=10)
    assert posted.status_code == 201, posted.text
    tweet_id = posted.json()["id"]

    def follower_has_it() -> bool:
        page = requests.get(f"{API}/timeline", headers=follower.auth, timeout=10)
        return page.status_code == 200 and tweet_id in [t["id"] for t in page.json()["items"]]

    wait_until(follower_has_it, timeout=DEADLINE, interval=0.1,
               message="the follower holding the tweet")
    return tweet_id, time.monotonic() - started


def ancestry(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """`span` and its ancestors up to the root (or to the first one not exported)."""
    chain = [span]
    while chain[-1].get("parent_id") in by_id:
        chain.append(by_id[chain[-1]["parent_id"]])
    return chain


def complete_chain(spans: list[dict[str, Any]],
                   deliver: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The chain from a Redis write under `deliver` to the root, once every span is in."""
    by_id = {s["span_id"]: s for s in spans}
    redis_writes = [s for s in spans if s["attributes"].get("db.system") == "redis"
                    and deliver["span_id"] in {a["span_id"] for a in ancestry(s, by_id)}]
    if not redis_writes:
        return None
    chain = ancestry(redis_writes[0], by_id)
    return chain if not chain[-1].get("parent_id") else None


def check_chain(chain: list[dict[str, Any]], trace_id: str) -> list[tuple[str, str]]:
    """Assert the chain runs Redis write → fanout → relay → timeline → gateway's
    `POST /api/v1/tweets` in one trace; returns its (service, kind) hops."""
    hops = [(s["service"], s["kind"]) for s in chain]
    assert hops[0] == ("fanout", "CLIENT"), hops
    assert [h for h in hops if h in EXPECTED_HOPS] == EXPECTED_HOPS, hops
    root = chain[-1]
    # Zipkin keeps span names lower-cased.
    assert (root["service"], root["name"].lower()) == ("gateway", "post /api/v1/tweets")
    assert {s["trace_id"] for s in chain} == {trace_id}
    consumer = next(s for s in chain if s["kind"] == "CONSUMER")
    assert consumer["attributes"]["murmur.event.type"] == "TweetPosted"
    assert consumer["status"]["code"] != "ERROR", consumer["status"]
    return hops

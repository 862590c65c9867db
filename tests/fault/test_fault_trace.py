"""One post, one trace: its spans chain gateway → timeline → Kafka → fanout → Redis.

Steady-state hypothesis: every process of the test profile exports its spans to
`$MURMUR_HOME/traces/<process>.jsonl`. A tweet posted through nginx by an author with one
follower leaves, within a few seconds of reaching the follower's home timeline, one trace
in which the Redis write that delivered it descends, parent by parent, from fanout's
CONSUMER span, the timeline relay's PRODUCER span (the trace crossed the outbox and
Kafka), the timeline's SERVER span and the gateway's SERVER span of `POST /api/v1/tweets`,
which is the trace's root. The span processors flush every 500 ms, so the spans are
polled for with a deadline.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

import trace_tree
from common import config, tracing
from conftest import wait_until
from fault.steady_load import API, sign_up

DEADLINE = 30.0  # for delivery, and again for the spans to reach the files


def spans_of_profile(trace_id: str | None = None) -> list[dict[str, Any]]:
    files = trace_tree.span_files(tracing.traces_dir(), config.profile().name)
    return list(trace_tree.read_spans(files, trace_id))


def delivery_span(tweet_id: str) -> dict[str, Any] | None:
    """fanout's span of writing `tweet_id` into home timelines, once it is exported."""
    needle = f'"murmur.tweet_id":"{tweet_id}"'.encode()
    for path in trace_tree.span_files(tracing.traces_dir(), config.profile().name):
        if "fanout" not in path.name:
            continue
        with path.open("rb") as lines:
            for line in lines:
                if needle in line and b'"home_timeline.deliver"' in line:
                    return json.loads(line)
    return None


def ancestry(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """`span` and its ancestors up to the root (or to the first one not exported)."""
    chain = [span]
    while chain[-1].get("parent_id") in by_id:
        chain.append(by_id[chain[-1]["parent_id"]])
    return chain


def complete_chain(trace_id: str, deliver: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The chain from a Redis write under `deliver` to the root, once every span is in."""
    spans = spans_of_profile(trace_id)
    by_id = {s["span_id"]: s for s in spans}
    redis_writes = [s for s in spans if s["attributes"].get("db.system") == "redis"
                    and deliver["span_id"] in {a["span_id"] for a in ancestry(s, by_id)}]
    if not redis_writes:
        return None
    chain = ancestry(redis_writes[0], by_id)
    return chain if chain[-1].get("parent_id") is None else None


def test_one_post_is_one_trace_from_the_gateway_to_the_redis_write():
    """Hypothesis (module docstring): gateway → timeline → relay → fanout → Redis in one
    trace, exported within 30 s of the follower holding the tweet."""
    author, follower = sign_up("trace"), sign_up("trace")
    followed = requests.put(f"{API}/users/me/following/{author.username}",
                            headers=follower.auth, timeout=10)
    assert followed.status_code == 204, followed.text
    started = time.monotonic()
    posted = requests.post(f"{API}/tweets", json={"text": "follow me through the stack"},
                           headers=author.auth, timeout=10)
    assert posted.status_code == 201, posted.text
    tweet_id = posted.json()["id"]

    def follower_has_it() -> bool:
        page = requests.get(f"{API}/timeline", headers=follower.auth, timeout=10)
        return page.status_code == 200 and tweet_id in [t["id"] for t in page.json()["items"]]

    wait_until(follower_has_it, timeout=DEADLINE, interval=0.1,
               message="the follower holding the tweet")
    delivered = time.monotonic() - started
    deliver = wait_until(lambda: delivery_span(tweet_id), timeout=DEADLINE, interval=0.2,
                         message="fanout's delivery span in the span files")
    chain = wait_until(lambda: complete_chain(deliver["trace_id"], deliver), timeout=DEADLINE,
                       interval=0.2, message="every span of the post's trace exported")
    exported = time.monotonic() - started

    hops = [(s["service"], s["kind"]) for s in chain]
    print(f"\npost -> follower's timeline {delivered:.2f}s, whole trace exported "
          f"{exported:.2f}s; chain from the Redis write up: {hops}")
    print(trace_tree.render(spans_of_profile(deliver["trace_id"])))
    assert hops[0] == ("fanout", "CLIENT")
    expected = [("fanout", "CONSUMER"), ("timeline-relay", "PRODUCER"),
                ("timeline", "SERVER"), ("gateway", "SERVER")]
    assert [h for h in hops if h in expected] == expected, hops
    root = chain[-1]
    assert (root["service"], root["name"]) == ("gateway", "POST /api/v1/tweets")
    assert {s["trace_id"] for s in chain} == {deliver["trace_id"]}
    consumer = next(s for s in chain if s["kind"] == "CONSUMER")
    assert consumer["attributes"]["murmur.event.type"] == "TweetPosted"
    assert consumer["status"]["code"] != "ERROR", consumer["status"]

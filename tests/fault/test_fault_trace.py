"""One post, one trace in Zipkin: its spans chain gateway → timeline → Kafka → fanout → Redis.

Steady-state hypothesis: every process of the test profile exports its spans to the local
Zipkin (the platform's default exporter). A tweet posted through nginx by an author with
one follower leaves, within a few seconds of reaching the follower's home timeline, one
trace in Zipkin in which the Redis write that delivered it descends, parent by parent,
from fanout's CONSUMER span, the timeline relay's PRODUCER span (the trace crossed the
outbox and Kafka), the timeline's SERVER span and the gateway's SERVER span of
`POST /api/v1/tweets`, which is the trace's root. The span processors flush every 500 ms
and Zipkin indexes what it receives at once, so its API is polled with a deadline.
(The span-file exporter, the option, is checked in tests/platform/test_platform_otel.py.)
"""

from __future__ import annotations

import time
from typing import Any

import trace_tree
from common import config
from conftest import wait_until
from trace_chain import DEADLINE, check_chain, complete_chain, post_and_deliver


def zipkin() -> trace_tree.Zipkin:
    return trace_tree.Zipkin(trace_tree.zipkin_url())


def delivery_span(tweet_id: str) -> dict[str, Any] | None:
    """The test-profile fanout's span of writing `tweet_id` into home timelines, once Zipkin
    has it."""
    process = f"{config.profile().name}-fanout"
    found = zipkin().get("/api/v2/traces", serviceName="fanout", limit=5,
                         annotationQuery=f"murmur.tweet_id={tweet_id} and "
                                         f"murmur.process={process}")
    for spans in found or []:
        for span in map(trace_tree.from_zipkin, spans):
            if span["name"] == "home_timeline.deliver" and \
                    span["attributes"].get("murmur.tweet_id") == tweet_id:
                return span
    return None


def test_one_post_is_one_trace_in_zipkin_from_the_gateway_to_the_redis_write():
    """Hypothesis (module docstring): gateway → timeline → relay → fanout → Redis in one
    trace, in Zipkin within 30 s of the follower holding the tweet."""
    started = time.monotonic()
    tweet_id, delivered = post_and_deliver("follow me through the stack")
    deliver = wait_until(lambda: delivery_span(tweet_id), timeout=DEADLINE, interval=0.2,
                         message="fanout's delivery span in Zipkin")
    trace_id = deliver["trace_id"]
    chain = wait_until(lambda: complete_chain(zipkin().trace(trace_id), deliver),
                       timeout=DEADLINE, interval=0.2,
                       message="every span of the post's trace in Zipkin")
    exported = time.monotonic() - started

    hops = check_chain(chain, trace_id)
    print(f"\npost -> follower's timeline {delivered:.2f}s, whole trace in Zipkin "
          f"{exported:.2f}s; chain from the Redis write up: {hops}")
    print(trace_tree.render(zipkin().trace(trace_id)))
    print(f"{trace_tree.zipkin_url()}/zipkin/traces/{trace_id}")

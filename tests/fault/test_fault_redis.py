"""Redis stopped: home timelines are rebuilt from Cassandra, and normal again once it returns.

Steady-state hypothesis: a reader's home timeline answers 200 holding the tweets of the
people they follow. While Redis is stopped it still answers 200, marked
`Murmur-Degraded: home-timeline-rebuilt` (rebuilt from the followees' own timelines in
Cassandra) and still holding those tweets; within 10 s of Redis being ready again it
answers normally (no degraded marker), from Redis, with the same tweets.
"""

from __future__ import annotations

import time

from conftest import wait_until
from fault._client import DEGRADED, Api, Stopwatch, percentile, steady_again

REBUILT = "home-timeline-rebuilt"
RECOVERY_TARGET = 10.0  # seconds after Redis is ready (DESIGN §9)


def test_without_redis_the_home_timeline_is_rebuilt_and_recovers(components):
    """Hypothesis (module docstring): 200 + degraded + followees' tweets while Redis is
    stopped; normal within 10 s of its readiness."""
    api = Api()
    try:
        reader, author = api.sign_up("fault_redis_r"), api.sign_up("fault_redis_a")
        api.follow(reader, author)
        posted = {api.tweet(author) for _ in range(3)}
        wait_until(lambda: posted <= set(api.home_ids(reader)), timeout=30,
                   message="the author's tweets fanned out to the reader")

        components.stop("redis")
        try:
            timings = []
            for _ in range(10):
                started = time.perf_counter()
                resp = api.home(reader)
                timings.append(time.perf_counter() - started)
                assert resp.status_code == 200, resp.text
                assert resp.headers.get(DEGRADED) == REBUILT
                assert posted <= {t["id"] for t in resp.json()["items"]}
            print(f"\nhome timeline without Redis: 200 degraded, p50 "
                  f"{percentile(timings, 0.5) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms")
        finally:
            components.start("redis")  # returns once Redis answers (ready)

        since_ready = Stopwatch()

        def normal_again() -> bool:
            resp = api.home(reader)
            return (resp.status_code == 200 and DEGRADED not in resp.headers
                    and posted <= {t["id"] for t in resp.json()["items"]})

        wait_until(normal_again, timeout=60, interval=0.1,
                   message="a normal home timeline after Redis returned")
        recovery = since_ready()
        everywhere = steady_again(reader, since_ready, "Redis returned")
        print(f"normal again {recovery:.2f} s after Redis was ready, no worker's breaker "
              f"open after {everywhere:.2f} s (target {RECOVERY_TARGET:.0f} s)")
        assert everywhere <= RECOVERY_TARGET
    finally:
        api.close()

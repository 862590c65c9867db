"""2 s of latency on Cassandra: the breaker opens, requests fail fast, a trial closes it.

Steady-state hypothesis: a user's tweets (`GET /users/{name}/tweets`, which always reads
Cassandra) answer 200 quickly. With 2 s of latency added to every Cassandra response
(Toxiproxy, between the timeline service and Cassandra), the first requests are slow and
fail; after the breaker's threshold of failures the timeline's Cassandra breaker opens and
requests fail fast with 503 + Retry-After (problem+json) instead of waiting. Once the
latency is removed, a half-open trial succeeds, the breaker closes and the same request
answers 200 again (target: within 10 s).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import wait_until
from fault._client import Api, Stopwatch, metric, percentile, steady_again

LATENCY_MS = 2000
SLOW = 1.0  # seconds: a request that took this long waited on Cassandra
FAST = 0.1  # seconds: the fail-fast bound asserted at the client (through nginx)


def test_cassandra_latency_opens_the_breaker_then_a_trial_closes_it(toxiproxy):
    """Hypothesis (module docstring): slow failures until the breaker opens, then 503s in
    well under 100 ms at the client, then 200 again once the latency is gone."""
    api = Api()
    try:
        author = api.sign_up("fault_cass")
        api.tweet(author)
        assert api.user_tweets(author.username).status_code == 200
        opened_before = transitions("open")
        closed_before = transitions("closed")

        toxiproxy.add_latency("cassandra", LATENCY_MS)
        try:
            slow = _until_failing_fast(author.username)
            assert metric("timeline", "murmur_breaker_state", breaker="cassandra") == 2, \
                "the timeline's Cassandra breaker is not open"
            opened = transitions("open") - opened_before
            print(f"\n{slow} slow requests (each >= {SLOW:.0f} s) before requests failed "
                  f"fast; the Cassandra breaker opened in {opened:.0f} timeline worker(s)")

            fail_fast = []
            for _ in range(40):
                started = time.perf_counter()
                resp = api.user_tweets(author.username)
                fail_fast.append(time.perf_counter() - started)
                assert resp.status_code == 503, resp.text
                assert resp.headers["Content-Type"].startswith("application/problem+json")
                assert int(resp.headers["Retry-After"]) >= 1
            p50, top = percentile(fail_fast, 0.5), max(fail_fast)
            print(f"fail-fast latency at the client through nginx: p50 {p50 * 1000:.1f} ms, "
                  f"p90 {percentile(fail_fast, 0.9) * 1000:.1f} ms, max {top * 1000:.1f} ms")
            assert p50 < FAST and percentile(fail_fast, 0.9) < FAST
        finally:
            toxiproxy.heal("cassandra")

        healed = Stopwatch()

        def closed_by_a_trial() -> bool:
            api.user_tweets(author.username)  # a breaker moves only when a call reaches it
            # Only a successful half-open trial moves a breaker to closed.
            return transitions("closed") > closed_before

        wait_until(closed_by_a_trial, timeout=60, interval=0.2,
                   message="a half-open trial closing the Cassandra breaker")
        closed_after = healed()
        normal_after = steady_again(author, healed, "the latency was removed")
        print(f"breaker closed by a half-open trial {closed_after:.2f} s after the latency "
              f"was removed; no worker's breaker open and all probe reads answered 200 "
              f"after {normal_after:.2f} s (target 10 s)")
    finally:
        api.close()


def _until_failing_fast(username: str) -> int:
    """Load the endpoint from 4 clients until 20 answers in a row are fast 503s; returns
    how many requests were slow before that."""
    lock = threading.Lock()
    state = {"slow": 0, "fast_in_a_row": 0}
    done = threading.Event()
    deadline = time.monotonic() + 120

    def client() -> None:
        own = Api()  # a session per thread
        try:
            run(own)
        finally:
            own.close()

    def run(own: Api) -> None:
        while not done.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            status = own.user_tweets(username, timeout=15).status_code
            took = time.perf_counter() - started
            with lock:
                if took >= SLOW:
                    state["slow"] += 1
                    state["fast_in_a_row"] = 0
                elif status == 503:
                    state["fast_in_a_row"] += 1
                    if state["fast_in_a_row"] >= 20:
                        done.set()

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(client)
    assert done.is_set(), f"requests never failed fast: {state}"
    return state["slow"]


def transitions(to: str) -> float:
    """How often the timeline's Cassandra breakers (all workers) moved to state `to`."""
    return metric("timeline", "murmur_breaker_transitions_total", breaker="cassandra", to=to)

"""Kafka stopped while posting: every tweet is accepted, and delivered once after it returns.

Steady-state hypothesis: a posted tweet answers 201 and reaches each follower's home
timeline exactly once. With Kafka stopped, POST /tweets keeps answering 201 (the tweet
and its TweetPosted event are written to Cassandra in one batch; the outbox relay cannot
publish yet). After Kafka is back, the relay publishes the waiting events and fanout
delivers every accepted tweet to the follower: none lost, none duplicated.
"""

from __future__ import annotations

from collections import Counter

from conftest import wait_until
from fault._client import Api, Stopwatch

TWEETS = 8


def test_tweets_posted_while_kafka_is_down_all_reach_the_follower_once(components):
    """Hypothesis (module docstring): 201 for every post while Kafka is stopped; all of
    them in the follower's home timeline exactly once after Kafka returns."""
    api = Api()
    try:
        author, follower = api.sign_up("fault_kafka_a"), api.sign_up("fault_kafka_f")
        api.follow(follower, author)
        before = api.tweet(author)
        wait_until(lambda: before in api.home_ids(follower), timeout=30,
                   message="fan-out working before the fault")

        components.stop("kafka")
        try:
            answers = [api.post(author, f"while kafka is down {i}") for i in range(TWEETS)]
            assert [a.status_code for a in answers] == [201] * TWEETS, \
                [(a.status_code, a.text[:200]) for a in answers]
            accepted = [a.json()["id"] for a in answers]
        finally:
            components.start("kafka")  # returns once Kafka is ready

        since_ready = Stopwatch()  # delivery also waits for clients to reconnect
        wait_until(lambda: set(accepted) <= set(api.home_ids(follower)), timeout=120,
                   interval=0.5, message="every accepted tweet in the follower's timeline")
        delivered_after = since_ready()
        home = api.home_ids(follower)
        counts = Counter(home)
        assert [t for t, n in counts.items() if n > 1] == [], "a tweet appears twice"
        assert set(accepted) | {before} == set(home)
        print(f"\n{TWEETS} tweets accepted (201) while Kafka was stopped; all delivered once, "
              f"{delivered_after:.1f} s after Kafka was ready")
    finally:
        api.close()

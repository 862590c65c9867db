"""The users service stopped: fan-out pauses, then resumes without losing the tweet.

Steady-state hypothesis: a TweetPosted event reaches every follower's home timeline. While
the users service is stopped, fanout cannot page the author's followers: the event is not
dead-lettered and not skipped, its partition is paused and retried (outcome
`retry_later`); once users is back, the same event is processed and the tweet reaches the
follower.

To have the event in Kafka while users is down (posting through the gateway needs users),
the tweet is posted with the timeline's outbox relay stopped, users is stopped, and only
then is the relay started again to publish it.
"""

from __future__ import annotations

from common.home_timeline import HomeTimelines
from conftest import wait_until
from fault._client import Api, Stopwatch, metric


def events(outcome: str) -> float:
    return metric("fanout", "murmur_fanout_events_total", type="TweetPosted", outcome=outcome)


def test_fanout_pauses_while_users_is_down_and_resumes_without_loss(components, redis_client):
    """Hypothesis (module docstring): retried, never dead-lettered, while users is down;
    delivered once users is back."""
    api = Api()
    timelines = HomeTimelines(redis_client)
    try:
        author, follower = api.sign_up("fault_users_a"), api.sign_up("fault_users_f")
        api.follow(follower, author)
        warmup = api.tweet(author)
        wait_until(lambda: warmup in api.home_ids(follower), timeout=30,
                   message="fan-out working before the fault")
        dead_lettered = metric("fanout", "murmur_fanout_dead_lettered_total")

        components.stop("test-timeline-relay")
        tweet_id = int(api.tweet(author, "posted before users went down"))
        components.stop("test-users")
        try:
            retried = events("retry_later")
            components.start("test-timeline-relay")
            wait_until(lambda: events("retry_later") >= retried + 2, timeout=60, interval=0.2,
                       message="fanout retrying the event while users is down")
            assert tweet_id not in timelines.page(int(follower.id), None, 100)
        finally:
            since_start = Stopwatch()
            components.start("test-users")  # returns once users is ready
            ready_after = since_start()

        wait_until(lambda: tweet_id in timelines.page(int(follower.id), None, 100), timeout=60,
                   interval=0.2, message="the tweet delivered after users returned")
        resumed_after = since_start()
        wait_until(lambda: str(tweet_id) in api.home_ids(follower), timeout=30,
                   message="the tweet in the follower's home timeline through nginx")
        assert metric("fanout", "murmur_fanout_dead_lettered_total") == dead_lettered
        print(f"\nfanout retried {events('retry_later') - retried:.0f} time(s) while users "
              f"was down and dead-lettered nothing; users was started again and ready after "
              f"{ready_after:.1f} s, the tweet delivered {resumed_after:.1f} s after the start")
    finally:
        api.close()

"""A timeline process killed between its batch and its publish loses nothing.

Steady-state hypothesis: an accepted tweet reaches its followers' home timelines. The
tweet and its TweetPosted event are written in one Cassandra batch (the outbox), and only
the outbox relay publishes events to Kafka. So when the timeline service dies abruptly
(SIGKILL of its gunicorn master and workers: no shutdown hook runs) after the batch and
before the event is published, the event is still in the outbox: once the relay runs, the
tweet reaches the follower.

"Before the publish" is made certain by stopping the relay before posting: the test
checks the event is waiting in the outbox, kills the timeline service, lets supervisord
restart it, and starts the relay again.
"""

from __future__ import annotations

import json
import os
import signal

import stackctl as platform
from common import config
from conftest import wait_until
from fault._client import Api, Stopwatch, ready
from timeline import config as timeline_config
from timeline.domain import outbox_bucket

TIMELINE = "test-timeline"


def pending_tweet_ids(cassandra_session, author_id: int) -> set[int]:
    """Tweet ids of TweetPosted events waiting in the author's outbox bucket."""
    bucket = outbox_bucket(author_id, timeline_config.load().outbox_buckets)
    rows = cassandra_session.execute(
        f"SELECT payload FROM {config.stores().keyspace}.outbox WHERE bucket = %s", (bucket,))
    found = set()
    for row in rows:
        event = json.loads(row.payload)
        if event["type"] == "TweetPosted" and event["payload"]["author_id"] == str(author_id):
            found.add(int(event["payload"]["tweet_id"]))
    return found


def test_a_timeline_killed_before_publishing_loses_no_tweet(components, cassandra_session):
    """Hypothesis (module docstring): the event outlives the SIGKILL in the outbox and
    the tweet reaches the follower once the relay publishes it."""
    api = Api()
    try:
        author, follower = api.sign_up("fault_crash_a"), api.sign_up("fault_crash_f")
        api.follow(follower, author)

        components.stop("test-timeline-relay")
        tweet_id = api.tweet(author, "written, not yet published")
        assert int(tweet_id) in pending_tweet_ids(cassandra_session, int(author.id)), \
            "the TweetPosted event is not waiting in the outbox"

        old_pid = platform.process_info(TIMELINE)["pid"]
        assert old_pid, f"{TIMELINE} is not running"
        # Master and workers share the program's process group: all die at once.
        os.killpg(os.getpgid(old_pid), signal.SIGKILL)
        killed = Stopwatch()
        wait_until(lambda: platform.process_info(TIMELINE)["pid"] not in (0, old_pid)
                   and ready("timeline"), timeout=60, interval=0.2,
                   message=f"supervisord restarting {TIMELINE}, ready")
        restarted_after = killed()

        published = Stopwatch()
        components.start("test-timeline-relay")
        wait_until(lambda: tweet_id in api.home_ids(follower), timeout=60, interval=0.2,
                   message="the tweet in the follower's home timeline")
        print(f"\n{TIMELINE} back {restarted_after:.1f} s after SIGKILL; the tweet reached "
              f"the follower {published():.1f} s after the relay was started again")
        wait_until(lambda: int(tweet_id) not in pending_tweet_ids(cassandra_session,
                                                                  int(author.id)),
                   timeout=30, message="the published event removed from the outbox")
    finally:
        if platform.process_info(TIMELINE)["statename"] != "RUNNING":
            components.start(TIMELINE)
        api.close()

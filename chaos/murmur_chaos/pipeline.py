"""The write path behind a post: the outbox, Kafka, the fanout consumer, dead letters.

Read from the processes' own `/metrics` (the relays', fanout's) and, for the outbox's
contents, from Cassandra itself: the proof that a kill landed between a tweet's batch and
its publish is the tweet's event still waiting in the outbox on both sides of the kill.
"""

from __future__ import annotations

import json
import time
from typing import Any

from common import config
from murmur_chaos import context, ledger
from murmur_chaos.context import Deviation, Run
from murmur_chaos.steady import _observe, metric


def consumer_lag(run: Run) -> float:
    """Messages the fanout group has not processed yet, over every partition."""
    return metric(run, "fanout", "murmur_fanout_consumer_lag")


def consumer_lag_below(messages: int = 0, deadline: float = 60,
                       configuration: dict | None = None) -> bool:
    """Probe: the fanout group's lag falls to at most `messages` within `deadline` s."""
    run = context.current(configuration)
    end = time.monotonic() + deadline
    lag = consumer_lag(run)
    while lag > messages and time.monotonic() < end:
        time.sleep(0.5)
        lag = consumer_lag(run)
    if lag > messages:
        raise Deviation(f"consumer lag {lag:.0f} messages after {deadline:.0f}s "
                        f"(bound {messages})")
    return True


def outbox_backlog(run: Run, outbox: str = "timeline") -> float:
    relay = "timeline-relay" if outbox == "timeline" else "users-relay"
    return metric(run, relay, "murmur_outbox_backlog", outbox=outbox)


def outbox_drained(deadline: float = 60, configuration: dict | None = None) -> bool:
    """Probe: the timeline's outbox holds nothing unpublished within `deadline` s."""
    run = context.current(configuration)
    end = time.monotonic() + deadline
    while True:
        try:
            backlog = outbox_backlog(run)
        except OSError:
            backlog = float("nan")
        if backlog == 0:
            return True
        if time.monotonic() > end:
            raise Deviation(f"the timeline outbox still holds {backlog} events after "
                            f"{deadline:.0f}s")
        time.sleep(0.5)


def _dead_letters(run: Run) -> float:
    return metric(run, "fanout", "murmur_fanout_dead_lettered_total")


def remember_dead_letters(configuration: dict | None = None) -> float:
    """Action: note how many events fanout has dead-lettered so far."""
    run = context.current(configuration)
    count = _dead_letters(run)
    context.update_state(run, dead_letters=count)
    return count


def nothing_dead_lettered(configuration: dict | None = None) -> bool:
    """Probe: fanout dead-lettered nothing since `remember_dead_letters` (a restart of
    fanout resets its counter: the run's fault experiments do not restart it with this)."""
    run = context.current(configuration)
    before = context.state(run).get("dead_letters")
    if before is None:
        return True
    now = _dead_letters(run)
    if now > before:
        raise Deviation(f"fanout dead-lettered {now - before:.0f} event(s) during the fault")
    return True


def observe_fanout_retrying(deadline: float = 60, at_least: int = 2,
                            configuration: dict | None = None) -> dict[str, Any]:
    """Action: record whether fanout retries an event it cannot process yet (outcome
    `retry_later`) at least `at_least` times within `deadline` s, instead of dropping or
    dead-lettering it."""
    run = context.current(configuration)

    def retried() -> float:
        return metric(run, "fanout", "murmur_fanout_events_total", outcome="retry_later")

    start, end = retried(), time.monotonic() + deadline
    while retried() < start + at_least and time.monotonic() < end:
        time.sleep(0.2)
    count = retried() - start
    return _observe(run, "fanout retries the event while users is down", count >= at_least,
                    f"{count:.0f} retry_later outcomes in {deadline:.0f}s", retries=count)


def _pending_in_outbox(tweet_ids: list[str]) -> set[str]:
    """Which of `tweet_ids` have a TweetPosted event waiting in the timeline's outbox."""
    from cassandra.cluster import Cluster

    from timeline import config as timeline_config

    stores = config.stores()
    buckets = timeline_config.load().outbox_buckets
    cluster = Cluster(list(stores.cassandra_hosts), port=stores.cassandra_port,
                      connect_timeout=10)
    try:
        session = cluster.connect(stores.keyspace)
        found: set[str] = set()
        for bucket in range(buckets):
            for row in session.execute("SELECT payload FROM outbox WHERE bucket = %s",
                                       (bucket,), timeout=10):
                event = json.loads(row.payload)
                if event.get("type") == "TweetPosted":
                    found.add(str(event["payload"]["tweet_id"]))
        return found & set(tweet_ids)
    finally:
        cluster.shutdown()


def kill_inside_the_outbox_window(names: list[str] | None = None,
                                  configuration: dict | None = None) -> dict[str, Any]:
    """Action: SIGKILL the timeline's processes while the ledger's acknowledged tweets are
    written (batch committed, 201 answered) but not yet published; the outbox is read just
    before and just after the kill, and the observation records both, so the journal shows
    the kill landed inside that window (or says it did not)."""
    from murmur_chaos import platform

    run = context.current(configuration)
    since = context.last_mark(run, "fault started") or 0.0
    acked = [p["id"] for p in ledger.book(run).get("posts", [])
             if p.get("id") and p["sent_at"] >= since]
    before = _pending_in_outbox(acked)
    killed = [platform.kill_component(name, configuration) for name in
              (names or ["timeline-relay", "timeline"])]
    after = _pending_in_outbox(acked)
    inside = bool(acked) and before == set(acked) and after == set(acked)
    entry = _observe(run, "the kill landed between the batch and the publish", inside,
                     f"{len(acked)} acknowledged during the fault; unpublished just before the kill: "
                     f"{len(before)}, just after: {len(after)}",
                     killed=killed, pending_before=sorted(before), pending_after=sorted(after))
    context.update_state(run, killed={k["killed"]: k["pid"] for k in killed})
    return entry


def _holding(run: Run, tweet_id: str, follower_ids: list[int]) -> int:
    """How many of `follower_ids` hold `tweet_id` in their home timeline in Redis."""
    total = len(follower_ids)
    return total - ledger._wide_missing(run, [tweet_id], follower_ids)


def post_and_kill_mid_fanout(deadline: float = 30,
                             configuration: dict | None = None) -> dict[str, Any]:
    """Action: the ledger's (wide) author posts once; as soon as the tweet shows in the
    home timeline of any of 200 followers sampled across the audience, fanout is killed
    with SIGKILL. Redis is read again just after the kill: the observation records how many
    of all the followers held the tweet then, which proves the kill landed mid fan-out."""
    import redis

    from common.home_timeline import encode, key
    from murmur_chaos import platform

    run = context.current(configuration)
    followers = [int(f) for f in ledger.book(run)["wide_ids"]]
    sample = followers[::max(1, len(followers) // 200)]
    posted = ledger.post(count=1, configuration=configuration)
    tweet_id = posted["ids"][0]
    if tweet_id is None:
        return _observe(run, "fanout killed mid fan-out", False, "the post was not accepted")
    member = encode(int(tweet_id))
    with redis.Redis.from_url(config.stores().redis_url, socket_timeout=5) as store:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            pipe = store.pipeline(transaction=False)
            for fid in sample:
                pipe.zscore(key(fid), member)
            if any(score is not None for score in pipe.execute()):
                break
    killed = platform.kill_component("fanout", configuration)
    holding = _holding(run, tweet_id, followers)
    inside = 0 < holding < len(followers)
    return _observe(run, "fanout killed mid fan-out", inside,
                    f"{holding} of {len(followers)} followers held the tweet just after the kill",
                    killed=killed, holding=holding, followers=len(followers))

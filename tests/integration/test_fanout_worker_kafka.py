"""The fanout worker against the test profile's real Kafka and Redis.

The follower graph and the author's tweets come from in-memory ports passed through
`bootstrap` (the users and timeline services are proven end to end elsewhere); Kafka,
the consumer group, the dead-letter topic and the Redis timelines are real. Each test uses
its own consumer group, started at the topics' current end, and its own user ids.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from typing import Callable

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from common import config as common_config
from common import events, topics
from common.events import Event
from common.home_timeline import HomeTimelines, key
from fanout import config as fanout_config
from fanout.adapters import kafka as kafka_clients
from fanout.adapters.redis_home_timelines import RedisHomeTimelines
from fanout.bootstrap import bootstrap
from fanout.domain.errors import Refused
from fanout.domain.model import FollowerPage
from fanout.entrypoints.worker import worker_for

STORES = common_config.stores()
TWEETS = STORES.topic(topics.TWEETS)
FOLLOWS = STORES.topic(topics.FOLLOWS)
DLQ = STORES.topic(topics.FANOUT_DLQ)


class Graph:
    """Followers of the authors a test made up; anyone else has none."""

    def __init__(self, page_size: int = 2) -> None:
        self.followers: dict[int, list[int]] = {}
        self.page_size = page_size

    def follower_pages(self, user_id):
        ids = sorted(self.followers.get(user_id, []))
        for start in range(0, max(len(ids), 1), self.page_size):
            yield FollowerPage(ids[start:start + self.page_size], len(ids))

    def followers_count(self, user_id):
        return len(self.followers.get(user_id, []))


class NoTweets:
    def recent_tweet_ids(self, author_id, limit):
        return []


class CountingTimelines:
    """Passes writes on to the real timelines and counts deliveries per tweet."""

    def __init__(self, inner) -> None:
        self.inner, self.deliveries = inner, {}

    def deliver(self, tweet_id, user_ids):
        self.deliveries[tweet_id] = self.deliveries.get(tweet_id, 0) + 1
        return self.inner.deliver(tweet_id, user_ids)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def new_id() -> int:
    return random.randrange(1 << 55, 1 << 60)


@pytest.fixture(scope="module")
def redis_client():
    client = redis.Redis.from_url(STORES.redis_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="module")
def producer():
    p = KafkaProducer(bootstrap_servers=STORES.kafka_bootstrap, acks="all",
                      request_timeout_ms=10_000, max_block_ms=10_000)
    yield p
    p.close(timeout=5)


@pytest.fixture
def users(redis_client):
    """Fresh user ids for one test; their timelines are deleted afterwards."""
    made: list[int] = []

    def make(n: int = 1) -> list[int]:
        ids = [new_id() for _ in range(n)]
        made.extend(ids)
        return ids

    yield make
    if made:
        redis_client.delete(*[key(u) for u in made])


def group_at_end(group: str) -> None:
    """Commit the topics' end offsets for `group`, so it reads only what comes next."""
    c = KafkaConsumer(bootstrap_servers=STORES.kafka_bootstrap, group_id=group,
                      enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in (TWEETS, FOLLOWS)
               for p in sorted(c.partitions_for_topic(t) or ())]
        ends = c.end_offsets(tps)
        c.assign(tps)
        c.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in ends.items()})
    finally:
        c.close(autocommit=False)


class RunningWorker:
    """A fanout worker on its own thread, as `python -m fanout.entrypoints.worker` runs it."""

    def __init__(self, cfg, graph, home_timelines=None, **loop) -> None:
        overrides = {"home_timelines": home_timelines} if home_timelines is not None else {}
        self.fanout = bootstrap(cfg, followers=graph, tweets=NoTweets(), **overrides)
        self.consumer = kafka_clients.consumer(cfg)
        self.worker = worker_for(self.fanout, self.consumer, **{"poll_timeout_ms": 200, **loop})
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.worker.subscribe()
        self.worker.run()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)
        self.consumer.close(autocommit=False)
        self.fanout.close()
        assert not self.thread.is_alive(), "the worker did not stop"


@pytest.fixture
def cfg():
    group = f"test.fanout-it-{uuid.uuid4().hex[:10]}"
    group_at_end(group)
    # Explicit threshold: the test profile sets a tiny one for the end-to-end stories.
    return dataclasses.replace(fanout_config.load(), group_id=group, handler_attempts=2,
                               celebrity_threshold=100, redrive_group_id=f"{group}-redrive",
                               redrive_marker_ttl=600)


def post(producer, tweet_id: int, author_id: int):
    """Produce a TweetPosted; returns where it landed (topic, partition, offset)."""
    event = Event(uuid.uuid4().hex, events.TWEET_POSTED,
                  {"tweet_id": str(tweet_id), "author_id": str(author_id),
                   "created_at": "2025-01-01T00:00:00Z"})
    return producer.send(TWEETS, value=event.to_json(),
                         key=str(author_id).encode()).get(timeout=10)


def test_a_posted_tweet_lands_in_every_followers_home_timeline(cfg, producer, redis_client,
                                                                users):
    author, *followers = users(6)
    graph = Graph(page_size=2)
    graph.followers[author] = followers
    timelines = HomeTimelines(redis_client)
    tweet_id = new_id()
    with RunningWorker(cfg, graph):
        post(producer, tweet_id, author)
        wait_for(lambda: all(timelines.page(f) == [tweet_id] for f in followers),
                 what="the tweet in all five timelines")
    assert not timelines.exists(author)  # the author's own entry is the timeline service's


def test_a_redelivered_message_leaves_no_duplicate_entry(cfg, producer, redis_client, users):
    author, follower = users(2)
    graph = Graph()
    graph.followers[author] = [follower]
    timelines = HomeTimelines(redis_client)
    tweet_id = new_id()

    first = CountingTimelines(RedisHomeTimelines(timelines))
    crashing = RunningWorker(cfg, graph, home_timelines=first)
    crashing.worker.commit = lambda *a, **k: None  # dies after the writes, before committing
    with crashing:
        post(producer, tweet_id, author)
        wait_for(lambda: first.deliveries.get(tweet_id), what="the first delivery")
    assert timelines.page(follower) == [tweet_id]

    second = CountingTimelines(RedisHomeTimelines(timelines))
    with RunningWorker(cfg, graph, home_timelines=second):
        wait_for(lambda: second.deliveries.get(tweet_id), what="the redelivery")
    assert timelines.size(follower) == 1
    assert timelines.page(follower) == [tweet_id]


def dlq_consumer() -> tuple[KafkaConsumer, list[TopicPartition]]:
    c = KafkaConsumer(bootstrap_servers=STORES.kafka_bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=500)
    tps = [TopicPartition(DLQ, p) for p in sorted(c.partitions_for_topic(DLQ) or ())]
    c.assign(tps)
    for tp, end in c.end_offsets(tps).items():
        c.seek(tp, end)
    return c, tps


def test_a_poison_message_is_dead_lettered_and_the_next_message_still_processed(
        cfg, producer, redis_client, users):
    author, follower = users(2)
    graph = Graph()
    graph.followers[author] = [follower]
    timelines = HomeTimelines(redis_client)
    dlq, _ = dlq_consumer()
    poison = f"poison-{uuid.uuid4().hex}".encode()
    tweet_id = new_id()
    try:
        with RunningWorker(cfg, graph):
            producer.send(TWEETS, value=poison, key=str(author).encode()).get(timeout=10)
            post(producer, tweet_id, author)  # same key: same partition, behind the poison
            wait_for(lambda: timelines.page(follower) == [tweet_id],
                     what="the message after the poison")
        # Any other fanout group running on the test profile dead-letters it too.
        mine = ("dlq.consumer.group", cfg.group_id.encode())
        dead = wait_for(lambda: [m for batch in dlq.poll(timeout_ms=500).values()
                                 for m in batch if m.value == poison and mine in m.headers],
                        what="the poison in the dead-letter topic")
    finally:
        dlq.close()
    headers = dict(dead[0].headers)
    assert headers["dlq.error.class"] == b"InvalidEvent"
    assert headers["dlq.original.topic"] == TWEETS.encode()
    assert headers["dlq.consumer.group"] == cfg.group_id.encode()
    assert dead[0].key == str(author).encode()


def test_the_home_timeline_cap_holds(cfg, producer, redis_client, users):
    author, follower = users(2)
    graph = Graph()
    graph.followers[author] = [follower]
    timelines = HomeTimelines(redis_client)
    tweet_ids = sorted(new_id() for _ in range(8))
    with RunningWorker(dataclasses.replace(cfg, home_timeline_cap=5), graph):
        for tweet_id in tweet_ids:
            post(producer, tweet_id, author)
        wait_for(lambda: tweet_ids[-1] in timelines.page(follower, limit=10),
                 what="the last tweet")
    assert timelines.size(follower) == 5
    assert timelines.page(follower, limit=10) == sorted(tweet_ids[-5:], reverse=True)


def test_a_celebrity_post_reaches_no_follower_timeline(cfg, producer, redis_client, users):
    celebrity, author, *followers = users(5)
    graph = Graph()
    graph.followers[celebrity] = followers
    graph.followers[author] = followers[:1]
    timelines = HomeTimelines(redis_client)
    ordinary = new_id()
    with RunningWorker(dataclasses.replace(cfg, celebrity_threshold=len(followers)), graph):
        famous = post(producer, new_id(), celebrity)
        post(producer, ordinary, author)
        wait_for(lambda: timelines.page(followers[0]) == [ordinary], what="the ordinary post")
        wait_for(lambda: committed(cfg.group_id, famous) > famous.offset,
                 what="the celebrity post to be committed")
    assert [timelines.exists(f) for f in followers[1:]] == [False, False]
    assert timelines.page(followers[0]) == [ordinary]


def committed(group: str, record) -> int:
    """The offset `group` committed on the partition of `record` (0 if none)."""
    c = KafkaConsumer(bootstrap_servers=STORES.kafka_bootstrap, group_id=group,
                      enable_auto_commit=False)
    try:
        return c.committed(TopicPartition(record.topic, record.partition)) or 0
    finally:
        c.close(autocommit=False)


# ------------------------------------------ poison or not, and the way back (redrive)


class BrokenGraph(Graph):
    """Follower reads of `author` raise, as a bug of a bad deploy would, until `broken` is
    off (other authors' events, from other tests on the same topics, pass)."""

    def __init__(self, author: int) -> None:
        super().__init__()
        self.author, self.broken, self.calls = author, True, 0

    def follower_pages(self, user_id):
        if user_id == self.author:
            self.calls += 1
            if self.broken:
                raise RuntimeError("a bug in this deploy")
        return super().follower_pages(user_id)


class NewcomerGraph(Graph):
    """users as fan-out sees it: a user in `unknown` is answered 404 (Refused)."""

    def __init__(self) -> None:
        super().__init__()
        self.unknown: set[int] = set()

    def follower_pages(self, user_id):
        if user_id in self.unknown:
            raise Refused(f"GET users /internal/users/{user_id}/follower-ids: users: "
                          f"answered 404 No such user.")
        return super().follower_pages(user_id)


def failing_readiness(worker) -> str | None:
    try:
        worker.failing()
    except RuntimeError as exc:
        return str(exc)
    return None


def dead_letters_of(dlq: KafkaConsumer, tps: list[TopicPartition], group: str) -> list:
    """Every dead letter `group` wrote from the consumer's position up to the end now."""
    ends, found = dlq.end_offsets(tps), []
    deadline = time.monotonic() + 30
    while any(dlq.position(tp) < end for tp, end in ends.items()):
        assert time.monotonic() < deadline, "the dead-letter topic did not answer"
        for batch in dlq.poll(timeout_ms=500).values():
            found += [m for m in batch if ("dlq.consumer.group", group.encode()) in m.headers]
    return found


def test_a_failing_handler_holds_its_record_and_it_is_processed_once_the_fault_is_fixed(
        cfg, producer, redis_client, users):
    """Before, three failures dead-lettered the record: a bad deploy drained fan-out."""
    author, follower = users(2)
    graph = BrokenGraph(author)
    graph.followers[author] = [follower]
    timelines = HomeTimelines(redis_client)
    tweet_id = new_id()
    dlq, tps = dlq_consumer()
    try:
        with RunningWorker(cfg, graph, backoff_initial=0.1, backoff_max=0.5) as running:
            record = post(producer, tweet_id, author)
            held = f"{TWEETS}[{record.partition}]@{record.offset} held for"
            reason = wait_for(lambda: held in (failing_readiness(running.worker) or "")
                              and failing_readiness(running.worker),
                              what="readiness to name the held record")
            assert f"{held} " in reason and ": RuntimeError: a bug in this deploy" in reason
            wait_for(lambda: graph.calls >= 3 * cfg.handler_attempts, what="a few retries")
            assert committed(cfg.group_id, record) <= record.offset  # never past it
            assert not timelines.exists(follower)
            graph.broken = False  # the deploy is fixed
            wait_for(lambda: timelines.page(follower) == [tweet_id],
                     what="the held tweet delivered")
            wait_for(lambda: committed(cfg.group_id, record) > record.offset,
                     what="the group committing past it")
            assert failing_readiness(running.worker) is None
        assert dead_letters_of(dlq, tps, cfg.group_id) == []
    finally:
        dlq.close()


def redrive_once(cfg, graph, timelines, **options):
    """One run of the redrive, as `python -m fanout.entrypoints.redrive` does it."""
    from fanout.entrypoints.redrive import run

    service = bootstrap(cfg, followers=graph, tweets=NoTweets(), home_timelines=timelines)
    consumer = kafka_clients.dead_letter_consumer(cfg)
    try:
        return run(service, consumer, out=lambda _line: None, **options)
    finally:
        consumer.close(autocommit=False)
        service.close()


def test_dead_letters_are_redriven_once_however_often_the_redrive_runs(
        cfg, producer, redis_client, users):
    from fanout.service_layer.redrive import Verdict

    known, newcomer, follower = users(3)
    graph = NewcomerGraph()
    graph.followers[known] = [follower]
    graph.unknown.add(newcomer)  # users does not know them (yet)
    timelines = HomeTimelines(redis_client)
    early, late = new_id(), new_id()
    garbage = f"poison-{uuid.uuid4().hex}".encode()
    dlq, tps = dlq_consumer()
    try:
        with RunningWorker(cfg, graph):
            producer.send(TWEETS, value=garbage, key=str(known).encode()).get(timeout=10)
            post(producer, early, newcomer)
            dead = wait_for(lambda: len(dead_letters_of(dlq, tps, cfg.group_id)) == 2 or None,
                            what="both dead letters") and True
        assert dead
        # A post the old rule dead-lettered after three failures (a bug back then),
        # written to the topic as that rule wrote it.
        old = Event(uuid.uuid4().hex, events.TWEET_POSTED,
                    {"tweet_id": str(late), "author_id": str(known)})
        producer.send(DLQ, value=old.to_json(), key=str(known).encode(), headers=[
            ("dlq.error.class", b"RuntimeError"), ("dlq.error.message", b"a bug"),
            ("dlq.original.topic", TWEETS.encode()), ("dlq.consumer.group",
                                                      cfg.group_id.encode()),
            ("dlq.attempts", b"3")]).get(timeout=10)
    finally:
        dlq.close()

    graph.followers[newcomer] = [follower]
    graph.unknown.clear()  # users knows the newcomer now
    counting = CountingTimelines(RedisHomeTimelines(timelines))
    try:
        first = redrive_once(cfg, graph, counting)
        assert first.count(events.TWEET_POSTED, Verdict.REPLAYED) == 2
        assert first.count("unknown", Verdict.STILL_POISON) == 1
        assert first.total == 3
        assert counting.deliveries == {early: 1, late: 1}
        assert timelines.page(follower) == sorted([early, late], reverse=True)

        second = redrive_once(cfg, graph, counting)  # its group committed past them all
        assert second.total == 0

        third = redrive_once(cfg, graph, counting, from_beginning=True)
        assert third.count(events.TWEET_POSTED, Verdict.ALREADY_DONE) == 2
        assert third.count(events.TWEET_POSTED, Verdict.REPLAYED) == 0
        assert third.count("unknown", Verdict.STILL_POISON) == 1
        assert counting.deliveries == {early: 1, late: 1}  # delivered exactly once
        assert timelines.size(follower) == 2
    finally:
        marks = redis_client.keys(f"fanout:redriven:{cfg.group_id}:*")
        if marks:
            redis_client.delete(*marks)

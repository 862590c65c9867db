"""The outbox relay against the test profile's real Cassandra, Redis and Kafka."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import replace

import pytest
from kafka import KafkaConsumer, TopicPartition

from common import events, topics
from timeline import domain
from timeline.adapters import cassandra_store, redis_store
from timeline.app import create_app
from timeline.relay import KafkaPublisher, PublishFailed, RedisBucketLeases, Relay

DEADLINE = 30.0


class OwnBuckets:
    """Leases for buckets no other relay scans, so this test's relay works alone."""

    def __init__(self, buckets) -> None:
        self.buckets = list(buckets)

    def maintain(self):
        return self.buckets

    def release(self):
        pass


@pytest.fixture(scope="module")
def db(timeline_cfg):
    session = cassandra_store.CassandraSession(timeline_cfg.stores, 5.0)
    yield session
    session.shutdown()


@pytest.fixture(scope="module")
def redis_client(timeline_cfg):
    client = redis_store.connect(timeline_cfg.stores)
    yield client
    client.close()


@pytest.fixture(scope="module")
def publisher(timeline_cfg):
    pub = KafkaPublisher(timeline_cfg.stores.kafka_bootstrap, 5000,
                         f"test-relay-{uuid.uuid4().hex}")
    yield pub
    pub.close()


@pytest.fixture
def consumer(timeline_cfg):
    """A consumer in a fresh group, positioned at the current end of the tweets topic."""
    topic = timeline_cfg.stores.topic(topics.TWEETS)
    consumer = KafkaConsumer(bootstrap_servers=timeline_cfg.stores.kafka_bootstrap,
                             group_id=f"test-timeline-relay-{uuid.uuid4().hex}",
                             enable_auto_commit=False, request_timeout_ms=10000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)  # resolve the end offsets before anything is published
    yield consumer
    consumer.close()


def consume_until(consumer, predicate, deadline=DEADLINE):
    """The first record matching `predicate` within the deadline, else None."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                if predicate(record):
                    return record
    return None


def outbox_rows(db, bucket: int):
    return list(db.session.execute(
        f"SELECT event_id, key FROM {db.stores.keyspace}.outbox WHERE bucket = %s",
        (bucket,)))


def private_bucket() -> int:
    return 20_000 + random.randrange(1_000_000)


def write_posted(db, timeline_cfg, ids, bucket):
    author = random.randrange(1 << 40, 1 << 62)
    tweet_id = ids.next_id()
    tweet = domain.Tweet(tweet_id, author, "relayed", domain.created_at_of(tweet_id))
    message = replace(domain.to_outbox(domain.TweetPosted(tweet_id, author, tweet.created_at),
                                       ids.next_id(), timeline_cfg.stores.topic(topics.TWEETS),
                                       16, {"request_id": "req-1"}), bucket=bucket)
    cassandra_store.CassandraTweets(db).save_posted(tweet, message)
    return tweet, message


def test_the_relay_publishes_tweet_posted_and_then_removes_the_row(db, timeline_cfg,
                                                                 redis_client, publisher,
                                                                 consumer):
    ids = redis_store.leased_ids(redis_client, "test-relay")
    bucket = private_bucket()
    tweet, message = write_posted(db, timeline_cfg, ids, bucket)
    relay = Relay(cassandra_store.CassandraOutbox(db), publisher, OwnBuckets([bucket]))
    assert relay.run_once() == (1, True)
    record = consume_until(consumer, lambda r: r.key == str(tweet.author_id).encode())
    assert record is not None, "TweetPosted never reached test.tweets.v1"
    assert record.topic == "test.tweets.v1"
    event = events.Event.from_json(record.value)
    assert event.type == "TweetPosted" and event.event_id == str(message.event_id)
    assert event.payload == {"tweet_id": str(tweet.id), "author_id": str(tweet.author_id),
                             "created_at": domain.iso(tweet.created_at)}
    assert dict(record.headers)["request_id"] == b"req-1"
    assert outbox_rows(db, bucket) == []
    ids.release()


def test_while_kafka_is_down_rows_wait_in_the_outbox(db, timeline_cfg, redis_client,
                                                   publisher, consumer):
    ids = redis_store.leased_ids(redis_client, "test-relay")
    bucket = private_bucket()
    tweet, _ = write_posted(db, timeline_cfg, ids, bucket)
    outbox = cassandra_store.CassandraOutbox(db)
    dead = KafkaPublisher("127.0.0.1:9", 500, "test-relay-dead")
    with pytest.raises(PublishFailed):
        Relay(outbox, dead, OwnBuckets([bucket])).run_once()
    assert len(outbox_rows(db, bucket)) == 1
    Relay(outbox, publisher, OwnBuckets([bucket])).run_once()
    assert consume_until(consumer, lambda r: r.key == str(tweet.author_id).encode())
    assert outbox_rows(db, bucket) == []
    ids.release()


def test_a_post_and_a_delete_through_the_app_reach_kafka_in_order(timeline_cfg, db, publisher,
                                                                 consumer):
    # A million buckets put this author's rows in one the platform's relay never scans
    # (it owns 0..15), so only this test's relay publishes them and the order is exact.
    private = replace(timeline_cfg, outbox_buckets=1_000_000)
    author = random.randrange(1 << 40, 1 << 62)
    while domain.outbox_bucket(author, private.outbox_buckets) < timeline_cfg.outbox_buckets:
        author = random.randrange(1 << 40, 1 << 62)
    bucket = domain.outbox_bucket(author, private.outbox_buckets)
    app = create_app(private)
    services = app.extensions["timeline"]
    try:
        client = app.test_client()
        headers = {"X-User-Id": str(author)}
        tweet_id = client.post("/tweets", json={"text": "to kafka"}, headers=headers).json["id"]
        assert client.delete(f"/tweets/{tweet_id}", headers=headers).status_code == 204
        relay = Relay(cassandra_store.CassandraOutbox(db), publisher, OwnBuckets([bucket]))
        assert relay.run_once() == (2, True)
        seen: list[events.Event] = []

        def both_seen(record):
            if record.key == str(author).encode():
                seen.append(events.Event.from_json(record.value))
            return len(seen) == 2

        assert consume_until(consumer, both_seen) is not None, f"only {seen} reached Kafka"
        assert [e.type for e in seen] == ["TweetPosted", "TweetDeleted"]
        assert {e.payload["tweet_id"] for e in seen} == {str(tweet_id)}
        assert outbox_rows(db, bucket) == []
    finally:
        services.close()


def test_a_bucket_lease_has_one_holder_until_it_is_released(redis_client):
    prefix = f"test-leases-{uuid.uuid4().hex}"
    first = RedisBucketLeases(redis_client, prefix, "relay-a", 4, 10)
    second = RedisBucketLeases(redis_client, prefix, "relay-b", 4, 10)
    assert first.maintain() == [0, 1, 2, 3]
    assert second.maintain() == []
    assert first.maintain() == [0, 1, 2, 3], "renewing must keep what the holder has"
    assert redis_client.pttl(f"{prefix}:0") > 9_000
    first.release()
    assert second.maintain() == [0, 1, 2, 3]
    assert first.maintain() == []
    second.release()
    assert redis_client.exists(*(f"{prefix}:{b}" for b in range(4))) == 0

"""The timeline outbox relay against the test profile's real Cassandra, Redis and Kafka.

The rows go to buckets far beyond the platform relay's range (it owns 0..15), so only
this test's relay publishes them and what it finds there is exact.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import replace

import pytest

from common import events, topics
from common.ids import IdGenerator
from common.outbox import FixedBuckets, PublishFailed, Relay, RelaySettings
from common.outbox_kafka import KafkaPublisher
from timeline.adapters import cassandra_store
from timeline.adapters.cassandra_outbox import CassandraOutbox
from timeline.adapters.redis_outbox import RedisBucketLeases, RedisWakeups
from timeline.entrypoints.app import create_app

from integration._kafka import consumer_at_end, first_record
from conftest import wait_until

IDS = IdGenerator(1023)


@pytest.fixture(scope="module")
def publisher(timeline_cfg):
    pub = KafkaPublisher.to(timeline_cfg.stores.kafka_bootstrap, f"test-relay-{uuid.uuid4().hex}")
    yield pub
    pub.close()


@pytest.fixture
def consumer(timeline_cfg):
    consumer = consumer_at_end(timeline_cfg.stores.kafka_bootstrap,
                               timeline_cfg.stores.topic(topics.TWEETS))
    yield consumer
    consumer.close()


def outbox_rows(db, bucket: int):
    return list(db.session.execute(
        f"SELECT event_id, key FROM {db.stores.keyspace}.outbox WHERE bucket = %s",
        (bucket,)))


def private_bucket() -> int:
    return 20_000 + random.randrange(1_000_000)


def enqueue_posted(db, timeline_cfg, bucket: int) -> tuple[int, int]:
    """A TweetPosted row as the timeline service writes it; (author, event id)."""
    author, event_id, tweet_id = random.randrange(1 << 40, 1 << 62), IDS.next_id(), IDS.next_id()
    envelope = events.Event(event_id=str(event_id), type=events.TWEET_POSTED,
                            payload={"tweet_id": str(tweet_id), "author_id": str(author),
                                     "created_at": "2030-01-01T00:00:00.000Z"})
    db.session.execute(
        f"INSERT INTO {db.stores.keyspace}.outbox (bucket, event_id, topic, key, payload, "
        f"headers) VALUES (%s, %s, %s, %s, %s, %s)",
        (bucket, event_id, timeline_cfg.stores.topic(topics.TWEETS), str(author),
         envelope.to_json().decode(), {"request_id": "req-1"}))
    return author, event_id


def relay_of(db, publisher, bucket: int, **settings) -> Relay:
    return Relay("timeline", CassandraOutbox(db), publisher, leases=FixedBuckets([bucket]),
                 settings=RelaySettings(**settings))


def test_the_relay_publishes_a_row_and_then_deletes_it(db, timeline_cfg, publisher, consumer):
    bucket = private_bucket()
    author, event_id = enqueue_posted(db, timeline_cfg, bucket)
    assert relay_of(db, publisher, bucket).run_once() == (1, True)
    record = first_record(consumer, lambda r: r.key == str(author).encode())
    assert record is not None, "TweetPosted never reached test.tweets.v1"
    assert record.topic == "test.tweets.v1"
    event = events.Event.from_json(record.value)
    assert event.type == "TweetPosted" and event.event_id == str(event_id)
    assert dict(record.headers)["request_id"] == b"req-1"
    assert outbox_rows(db, bucket) == []


def test_while_kafka_is_down_rows_wait_in_the_outbox(db, timeline_cfg, publisher, consumer):
    bucket = private_bucket()
    author, _ = enqueue_posted(db, timeline_cfg, bucket)
    dead = KafkaPublisher.to("127.0.0.1:9", "test-relay-dead", request_timeout_ms=500,
                             delivery_timeout_ms=1000, max_block_ms=500)
    with pytest.raises(PublishFailed):
        relay_of(db, dead, bucket).run_once()
    assert len(outbox_rows(db, bucket)) == 1
    relay_of(db, publisher, bucket).run_once()
    assert first_record(consumer, lambda r: r.key == str(author).encode())
    assert outbox_rows(db, bucket) == []


def test_a_bucket_larger_than_a_batch_is_published_whole_in_order(db, timeline_cfg,
                                                                  publisher, consumer):
    bucket = private_bucket()
    written = [enqueue_posted(db, timeline_cfg, bucket) for _ in range(5)]
    relay = relay_of(db, publisher, bucket, batch=2)
    assert [relay.run_once() for _ in range(3)] == [(2, False), (2, False), (1, True)]
    keys = {str(author).encode(): event_id for author, event_id in written}
    seen: list[int] = []

    def all_seen(record):
        if record.key in keys:
            seen.append(int(events.Event.from_json(record.value).event_id))
        return len(seen) == len(written)

    assert first_record(consumer, all_seen) is not None, f"only {seen} reached Kafka"
    assert sorted(seen) == sorted(keys.values()) and outbox_rows(db, bucket) == []


def test_a_post_and_a_delete_through_the_app_reach_kafka_in_order(timeline_cfg, db, publisher,
                                                                 consumer):
    # A million buckets put this author's rows in one the platform's relay never scans.
    private = replace(timeline_cfg, outbox_buckets=1_000_000)
    author = random.randrange(1 << 40, 1 << 62)
    while cassandra_store.outbox_bucket(author, private.outbox_buckets) < 20_000:
        author = random.randrange(1 << 40, 1 << 62)
    bucket = cassandra_store.outbox_bucket(author, private.outbox_buckets)
    app = create_app(private)
    service = app.extensions["timeline"]
    try:
        client = app.test_client()
        headers = {"X-User-Id": str(author)}
        tweet_id = client.post("/tweets", json={"text": "to kafka"}, headers=headers).json["id"]
        assert client.delete(f"/tweets/{tweet_id}", headers=headers).status_code == 204
        assert relay_of(db, publisher, bucket).run_once() == (2, True)
        seen: list[events.Event] = []

        def both_seen(record):
            if record.key == str(author).encode():
                seen.append(events.Event.from_json(record.value))
            return len(seen) == 2

        assert first_record(consumer, both_seen) is not None, f"only {seen} reached Kafka"
        assert [e.type for e in seen] == ["TweetPosted", "TweetDeleted"]
        assert {e.payload["tweet_id"] for e in seen} == {str(tweet_id)}
        assert outbox_rows(db, bucket) == []
    finally:
        service.close()


def test_a_bucket_lease_has_one_holder_until_it_is_released(rds):
    prefix = f"test-leases-{uuid.uuid4().hex}"
    first = RedisBucketLeases(rds, "relay-a", 4, 10, prefix=prefix)
    second = RedisBucketLeases(rds, "relay-b", 4, 10, prefix=prefix)
    assert first.maintain() == [0, 1, 2, 3]
    assert second.maintain() == []
    assert first.maintain() == [0, 1, 2, 3], "renewing must keep what the holder has"
    assert rds.pttl(f"{prefix}:0") > 9_000
    first.release()
    assert second.maintain() == [0, 1, 2, 3]
    assert first.maintain() == []
    second.release()
    assert rds.exists(*(f"{prefix}:{b}" for b in range(4))) == 0


def test_two_relays_share_the_buckets_and_a_standby_takes_over_a_released_one(
        db, timeline_cfg, rds, publisher):
    prefix = f"test-leases-{uuid.uuid4().hex}"
    relays = [Relay("timeline", CassandraOutbox(db), publisher,
                    leases=RedisBucketLeases(rds, name, 2, 10, prefix=prefix))
              for name in ("relay-a", "relay-b")]
    assert [r.renew_leases(force=True) for r in relays] == [[0, 1], []]
    relays[0].leases.release()  # as it does when it stops: at once, no TTL to wait out
    assert relays[1].renew_leases(force=True) == [0, 1]
    relays[1].leases.release()


def test_a_wakeup_names_the_bucket_a_writer_nudged(timeline_cfg, rds):
    channel = f"test-wakeup-{uuid.uuid4().hex}"
    wakeups = RedisWakeups(rds, channel)
    try:
        assert wakeups.wait(0.05) == set()  # subscribed from now on
        rds.publish(channel, "7")
        rds.publish(channel, "not-a-bucket")
        rds.publish(channel, "9")
        nudged: set[int] = set()
        wait_until(lambda: nudged.update(wakeups.wait(0.2)) or nudged == {7, 9}, timeout=5)
    finally:
        wakeups.close()


def test_a_relay_wakes_on_a_nudge_and_publishes_at_once(db, timeline_cfg, rds,
                                                       publisher, consumer):
    bucket, channel = private_bucket(), f"test-wakeup-{uuid.uuid4().hex}"
    relay = Relay("timeline", CassandraOutbox(db), publisher, leases=FixedBuckets([bucket]),
                  wakeups=RedisWakeups(rds, channel),
                  # Sweeps far apart: only the nudge can make it publish in time.
                  settings=RelaySettings(idle_poll=0.2, sweep_interval=3600))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: relay.owned)  # its first sweep done
        time.sleep(0.5)  # subscribed
        author, _ = enqueue_posted(db, timeline_cfg, bucket)
        rds.publish(channel, str(bucket))
        assert first_record(consumer, lambda r: r.key == str(author).encode(), timeout=10)
    finally:
        stop.set()
        thread.join(10)
        relay.wakeups.close()
    assert outbox_rows(db, bucket) == []

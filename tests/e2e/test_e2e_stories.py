"""Stories across the whole system: fan-out, hybrid fan-out, follow graph changes, delivery.

Fan-out is asynchronous, so every assertion about another user's home timeline polls with
a deadline. Absence is proved with a barrier: a later event the same consumer must handle
first (same Kafka key, so same partition and order), a later delivery that has arrived, or
the fanout group's committed offset having moved past the event.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from common import config, home_timeline, topics
from common.events import TWEET_POSTED, Event

DELIVERY = 20.0  # seconds a fan-out may take in the test profile before we call it lost


def wait_until_fanout_consumed(api, tweet_id: str, timeout: float = DELIVERY) -> None:
    """Find the TweetPosted of `tweet_id` on Kafka and wait until the fanout group has
    committed past it: from then on, every write fanout would make for it is made."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    stores = config.stores()
    topic = stores.topic(topics.TWEETS)
    consumer = KafkaConsumer(bootstrap_servers=stores.kafka_bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    admin = KafkaAdminClient(bootstrap_servers=stores.kafka_bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:  # the event is recent: look at the tail of each partition only
            consumer.seek(tp, max(0, ends[tp] - 500))
        record = api.wait_until(lambda: next(
            (r for batch in consumer.poll(timeout_ms=500).values() for r in batch
             if b'"tweet_id":"%s"' % tweet_id.encode() in r.value), None), timeout,
            message=f"TweetPosted {tweet_id} on {topic}")
        tp = TopicPartition(record.topic, record.partition)
        group = f"{stores.topic_prefix}fanout"

        def committed_past() -> bool:
            offsets = admin.list_group_offsets(group).get(group, {})
            return tp in offsets and offsets[tp].offset > record.offset

        api.wait_until(committed_past, timeout,
                       message=f"group {group} committing past {record.offset}")
    finally:
        consumer.close()
        admin.close()


def has(api, member, tweet_id: str) -> bool:
    return tweet_id in api.home_ids(member)


def lacks(api, member, tweet_id: str) -> bool:
    return tweet_id not in api.home_ids(member)


def test_a_post_reaches_every_followers_home_timeline(api) -> None:
    author = api.sign_up("author")
    followers = [api.sign_up("reader") for _ in range(3)]
    for f in followers:
        api.follow(f, author)
    tweet = api.tweet(author, "to all my readers")
    for f in followers:
        api.wait_until(lambda f=f: has(api, f, tweet["id"]), DELIVERY,
                       message=f"tweet in {f.username}'s home timeline")
    [seen] = [t for t in api.get("/timeline", headers=followers[0].auth).json()["items"]
              if t["id"] == tweet["id"]]
    assert seen["author"]["username"] == author.username


def test_the_author_sees_a_post_at_once(api) -> None:
    author = api.sign_up()
    tweet = api.tweet(author)
    assert api.home_ids(author)[0] == tweet["id"]


def test_a_non_follower_never_gets_the_post(api) -> None:
    author, follower, stranger = api.sign_up(), api.sign_up(), api.sign_up()
    api.follow(follower, author)
    tweet = api.tweet(author)
    api.wait_until(lambda: has(api, follower, tweet["id"]), DELIVERY, message="delivery")
    assert tweet["id"] not in api.home_ids(stranger)


def test_a_celebrity_post_is_merged_at_read_time_and_written_nowhere(
        api, redis_client, timeline_celebrity) -> None:
    threshold = config.celebrity_threshold()
    assert threshold <= 20, (f"the test profile needs a low CELEBRITY_THRESHOLD (is {threshold})"
                             " so a celebrity can be made with a few follows")
    celebrity = api.sign_up("celeb")
    fans = [api.sign_up("fan") for _ in range(threshold)]
    for fan in fans:
        api.follow(fan, celebrity)
    assert api.user(celebrity.username)["followers_count"] == threshold
    # timeline decides at the post, from the status users announced when the count crossed
    timeline_celebrity(celebrity, True)
    star_post = api.tweet(celebrity, "one post, no fan-out")
    # Every fan reads it, merged in at read time ...
    for fan in fans:
        api.wait_until(lambda fan=fan: has(api, fan, star_post["id"]), DELIVERY,
                       message=f"celebrity post in {fan.username}'s timeline")
    # ... and once the fanout group has committed past the post's event, nothing was
    # written for it into any fan's home timeline.
    wait_until_fanout_consumed(api, star_post["id"])
    member = home_timeline.encode(int(star_post["id"]))
    for fan in fans:
        assert redis_client.zscore(home_timeline.key(int(fan.id)), member) is None
    # The celebrity still sees their own post at once.
    assert api.home_ids(celebrity)[0] == star_post["id"]


def test_following_backfills_and_unfollowing_removes(api) -> None:
    author, reader = api.sign_up(), api.sign_up()
    old = [api.tweet(author, f"before the follow {i}")["id"] for i in range(2)]
    api.follow(reader, author)
    for tweet_id in old:
        api.wait_until(lambda t=tweet_id: has(api, reader, t), DELIVERY, message="backfill")
    api.unfollow(reader, author)
    for tweet_id in old:
        api.wait_until(lambda t=tweet_id: lacks(api, reader, t), DELIVERY,
                       message="removal after unfollow")


def test_a_deleted_tweet_leaves_every_timeline(api, problem) -> None:
    author = api.sign_up()
    readers = [api.sign_up() for _ in range(2)]
    for r in readers:
        api.follow(r, author)
    tweet = api.tweet(author)
    for r in readers:
        api.wait_until(lambda r=r: has(api, r, tweet["id"]), DELIVERY, message="delivery")
    assert api.delete(f"/tweets/{tweet['id']}", headers=author.auth).status_code == 204
    problem(api.get(f"/tweets/{tweet['id']}"), 404)
    assert tweet["id"] not in api.home_ids(author)
    assert tweet["id"] not in [t["id"] for t in
                               api.get(f"/users/{author.username}/tweets").json()["items"]]
    for r in readers:
        api.wait_until(lambda r=r: lacks(api, r, tweet["id"]), DELIVERY,
                       message=f"deleted tweet gone from {r.username}'s timeline")


# ------------------------------------------------------------------- delivery guarantees


@pytest.fixture()
def producer(stores):
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=stores.kafka_bootstrap, request_timeout_ms=10_000)
    yield p
    p.close(timeout=5)


def produce(producer, stores, key: str, value: bytes) -> None:
    producer.send(stores.topic(topics.TWEETS), key=key.encode(), value=value).get(timeout=10)


def test_a_redelivered_tweet_posted_event_leaves_one_entry(api, producer, stores,
                                                            redis_client) -> None:
    author, reader = api.sign_up(), api.sign_up()
    api.follow(reader, author)
    tweet = api.tweet(author)
    api.wait_until(lambda: has(api, reader, tweet["id"]), DELIVERY, message="first delivery")
    size_before = redis_client.zcard(home_timeline.key(int(reader.id)))
    duplicate = Event(event_id=str(uuid.uuid4()), type=TWEET_POSTED, payload={
        "tweet_id": tweet["id"], "author_id": author.id,
        "created_at": datetime.now(timezone.utc).isoformat()})
    produce(producer, stores, author.id, duplicate.to_json())
    # Same key, same partition: once the next post arrives the duplicate was handled.
    barrier = api.tweet(author)
    api.wait_until(lambda: has(api, reader, barrier["id"]), DELIVERY, message="barrier post")
    ids = api.home_ids(reader)
    assert ids.count(tweet["id"]) == 1
    assert redis_client.zcard(home_timeline.key(int(reader.id))) == size_before + 1


def test_a_poison_message_is_dead_lettered_and_the_consumer_keeps_going(api, producer,
                                                                         stores) -> None:
    from kafka import KafkaConsumer, TopicPartition

    author, reader = api.sign_up(), api.sign_up()
    api.follow(reader, author)
    dlq = stores.topic(topics.FANOUT_DLQ)
    consumer = KafkaConsumer(bootstrap_servers=stores.kafka_bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or []]
        assert partitions, f"dead-letter topic {dlq} does not exist"
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, ends[tp])
        marker = f"poison-{uuid.uuid4().hex}"
        produce(producer, stores, author.id, b"{not json " + marker.encode())
        produce(producer, stores, author.id,
                json.dumps({"event_id": marker, "type": "NoSuchEvent", "version": 1,
                            "occurred_at": "x", "payload": {}}).encode())
        tweet = api.tweet(author, "after the poison")
        api.wait_until(lambda: has(api, reader, tweet["id"]), DELIVERY,
                       message="a real post delivered after the poison")
        found: list[bytes] = []

        def dead_lettered() -> bool:
            for record in consumer:
                blob = (record.value or b"") + b"".join(v or b"" for _, v in record.headers or [])
                if marker.encode() in blob:
                    found.append(blob)
            return len(found) >= 2

        api.wait_until(dead_lettered, DELIVERY, message=f"both poison messages in {dlq}")
    finally:
        consumer.close()

"""What the timeline's adapters write, checked without a store: the outbox envelope and
bucket of a tweet event."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from common import events
from timeline.adapters.cassandra_store import outbox_bucket, to_outbox
from timeline.domain.events import TweetDeleted, TweetPosted


def test_an_outbox_payload_is_the_shared_envelope_keyed_by_author():
    message = to_outbox(TweetDeleted(11, 5, 7), "test.tweets.v1", 16,
                        {"traceparent": "00-aa-01-01"})
    body = json.loads(message.payload)
    assert set(body) == {"event_id", "type", "version", "occurred_at", "payload"}
    assert (body["event_id"], body["type"]) == ("11", events.TWEET_DELETED)
    assert body["payload"] == {"tweet_id": "5", "author_id": "7"}
    assert (message.id, message.topic, message.key) == (11, "test.tweets.v1", "7")
    assert message.headers == {"traceparent": "00-aa-01-01"}


def test_a_tweet_and_its_deletion_share_their_authors_bucket():
    created = datetime(2030, 1, 1, tzinfo=timezone.utc)
    posted = to_outbox(TweetPosted(1, 5, 42, created), "t", 16)
    deleted = to_outbox(TweetDeleted(2, 5, 42), "t", 16)
    assert posted.bucket == deleted.bucket == outbox_bucket(42, 16)
    assert events.Event.from_json(posted.payload).payload["created_at"] == \
        "2030-01-01T00:00:00.000Z"


def test_snowflake_like_author_ids_spread_over_the_buckets():
    spread = {outbox_bucket(i << 22, 16) for i in range(1, 200)}
    assert len(spread) > 8, "snowflake-like ids must not crowd a few buckets"

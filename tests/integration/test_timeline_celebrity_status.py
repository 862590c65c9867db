"""The fan-out decision and the celebrity status in timeline's Cassandra tables (test
profile): the decision is stored with the tweet and read back for its delete; the newest
status wins whatever the order of the writes, and profile and status never overwrite
each other."""

from __future__ import annotations

import random

from common import events, topics
from timeline.adapters import cassandra_store
from timeline.adapters.cassandra_authors import CassandraAuthors
from timeline.domain.events import TweetPosted
from timeline.domain.model import Author, CelebrityStatus, Tweet, created_at_of, seed_author

BUCKETS = 100_000  # events land in buckets beyond the relay's (it watches fewer)


def cql(db, statement: str, *args):
    return list(db.session.execute(statement.format(ks=db.stores.keyspace), args))


def unrelayed_author() -> int:
    """An author whose outbox rows no relay publishes: this test deletes them itself."""
    while True:
        author = random.randrange(1 << 40, 1 << 62)
        if cassandra_store.outbox_bucket(author, BUCKETS) >= 1000:
            return author


def test_the_fan_out_decision_is_stored_with_the_tweet_and_read_back(db, timeline_cfg):
    repo = cassandra_store.CassandraTweets(db, timeline_cfg.stores.topic(topics.TWEETS), BUCKETS)
    author = unrelayed_author()
    tweet_ids = [random.randrange(1 << 50, 1 << 60) for _ in range(2)]
    try:
        for tweet_id, decision in zip(tweet_ids, (False, True)):
            tweet = Tweet(tweet_id, author, "decided", created_at_of(tweet_id), decision)
            repo.save_posted(tweet, TweetPosted(tweet_id + 1, tweet_id, author, tweet.created_at,
                                                decision), {})
        found = repo.get_many(tweet_ids)
        assert [found[t].fan_out for t in tweet_ids] == [False, True]
        [row] = cql(db, "SELECT payload FROM {ks}.outbox WHERE bucket = %s AND event_id = %s",
                    cassandra_store.outbox_bucket(author, BUCKETS), tweet_ids[0] + 1)
        assert events.Event.from_json(row.payload).payload[events.FAN_OUT] is False
        # A row written before the decision was stored reads back without one.
        old = random.randrange(1 << 50, 1 << 60)
        cql(db, "INSERT INTO {ks}.tweets (id, author_id, text, created_at) "
                "VALUES (%s, %s, 'old', toTimestamp(now()))", old, author)
        assert repo.get_many([old])[old].fan_out is None
    finally:
        cql(db, "DELETE FROM {ks}.outbox WHERE bucket = %s",
            cassandra_store.outbox_bucket(author, BUCKETS))


def test_the_newest_status_wins_and_profile_and_status_leave_each_other_alone(db):
    authors = CassandraAuthors(db)
    user = random.randrange(1 << 40, 1 << 62)
    name = f"star_{user % 10**9}"
    authors.record_status(CelebrityStatus(user, True, 3))
    assert authors.get_many([user])[user] == Author(user, None, None, 0, celebrity=True)
    authors.record_status(CelebrityStatus(user, False, 2))  # late: ignored
    authors.record(Author(user, name, "Star", 4))  # a profile after the status
    authors.record(seed_author(user, name))  # a post's seed: the lowest version
    assert authors.get_many([user])[user] == Author(user, name, "Star", 4, celebrity=True)
    authors.record_status(CelebrityStatus(user, False, 4))
    assert authors.get_many([user])[user] == Author(user, name, "Star", 4, celebrity=False)

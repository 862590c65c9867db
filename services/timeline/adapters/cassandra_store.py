"""Tweets, authors' timelines and the outbox in Cassandra.

The driver's Cluster owns an event loop thread and sockets, which do not survive a fork:
`CassandraSession` connects on first use, so each gunicorn worker (and the relay) gets its
own after the fork. Statements are prepared once per session and carry the configured
consistency level.

The repository's calls go through `CassandraSession.execute`/`read`/`read_many`: each is
bounded by the request's deadline (`resilience.timeout_within`), runs through the Cassandra
breaker when one is given, and reads (idempotent) are retried on outages.
"""

from __future__ import annotations

import threading
import zlib
from datetime import timezone
from typing import Any, Mapping, Sequence

from cassandra import ConsistencyLevel, OperationTimedOut
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from common import events, outages, resilience
from common.config import Stores
from common.outbox import OutboxMessage
from common.rules import MAX_ID
from timeline.adapters.guard import Guard
from timeline.domain.events import TweetEvent
from timeline.domain.model import Tweet

# The native protocol of Cassandra 4 and 5; fixing it spares a downgrade handshake per host.
PROTOCOL_VERSION = 5

# Concurrent reads in flight per call (hydration, celebrity merge): enough to hide latency,
# few enough not to starve the other request threads of the shared connection.
CONCURRENCY = 32

# "Cassandra cannot answer now" is `common.outages`' "cassandra": those trip the breaker.
# Anything else (an invalid query, a schema mismatch) is a bug no retry or breaker helps.
# Reads are retried on every outage but our own timeout: a node too slow to answer in time
# is not helped by asking it again, and every retry would add to its load.
RETRYABLE = tuple(error for error in outages.exceptions("cassandra")
                  if error is not OperationTimedOut)


def retryable(exc: BaseException) -> bool:
    """Whether a read that failed with `exc` is worth trying again at once."""
    return isinstance(exc, RETRYABLE) and outages.is_outage("cassandra", exc)


def consistency_level(name: str) -> int:
    """The driver constant for a consistency level name such as 'LOCAL_QUORUM'."""
    try:
        return ConsistencyLevel.name_to_value[name.upper()]
    except KeyError:
        raise ValueError(f"unknown Cassandra consistency level {name!r}") from None


class CassandraSession:
    """One lazily connected session per process, with a cache of prepared statements."""

    def __init__(self, stores: Stores, request_timeout: float = 2.0, *,
                 breaker: resilience.Breaker | None = None, read_attempts: int = 1) -> None:
        self.stores = stores
        self.request_timeout = request_timeout
        self.guard = Guard("cassandra", "cassandra", breaker, read_attempts=read_attempts,
                           retry_on=retryable)
        self.consistency = consistency_level(stores.cassandra_consistency)
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}

    @property
    def session(self) -> Session:
        """The connected session (connects on first use)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    profile = ExecutionProfile(
                        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                        consistency_level=self.consistency,
                        request_timeout=self.request_timeout,
                    )
                    cluster = Cluster(list(self.stores.cassandra_hosts),
                                      port=self.stores.cassandra_port,
                                      execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                                      connect_timeout=self.stores.connect_timeout,
                                      protocol_version=PROTOCOL_VERSION)
                    self._session = cluster.connect()
                    self._cluster = cluster
        return self._session

    def prepare(self, cql: str) -> PreparedStatement:
        """A prepared statement for `cql` at the configured consistency (prepared once).

        `{ks}` in `cql` becomes the keyspace: qualified names instead of a session-wide
        USE, which Cassandra flags as ambiguous for prepared statements.
        """
        statement = self._prepared.get(cql)
        if statement is None:
            statement = self.session.prepare(cql.format(ks=self.stores.keyspace))
            statement.consistency_level = self.consistency
            self._prepared[cql] = statement
        return statement

    def batch(self, batch_type: BatchType = BatchType.LOGGED) -> BatchStatement:
        """An empty batch at the configured consistency."""
        return BatchStatement(batch_type=batch_type, consistency_level=self.consistency)

    def execute(self, statement: Any, params: Any = None) -> list:
        """Run a write once (no retry), within the deadline, through the breaker."""
        return self.guard.call(self._rows, statement, params)

    def read(self, statement: Any, params: Any = None) -> list:
        """Run an idempotent read, retried on outages within the deadline."""
        return self.guard.read("read", self._rows, statement, params)

    def read_many(self, statement: PreparedStatement, params: list[tuple]) -> list[list]:
        """Run one read per parameter tuple concurrently; the rows of each, in order."""
        if not params:
            return []
        return self.guard.read("read_many", self._concurrent_rows, statement, params)

    def _rows(self, statement: Any, params: Any) -> list:
        timeout = resilience.timeout_within(self.request_timeout)
        return list(self.session.execute(statement, params, timeout=timeout))

    def _concurrent_rows(self, statement: PreparedStatement, params: list[tuple]) -> list[list]:
        # execute_concurrent takes no timeout: a copy of the default profile carries it.
        profile = self.session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, request_timeout=resilience.timeout_within(self.request_timeout))
        results = execute_concurrent_with_args(self.session, statement, params,
                                               concurrency=CONCURRENCY,
                                               raise_on_first_error=True,
                                               execution_profile=profile)
        return [list(result) for _ok, result in results]

    def ping(self) -> None:
        """Raise unless the node answers a trivial query."""
        self.session.execute("SELECT release_version FROM system.local",
                             timeout=self.request_timeout).one()

    def shutdown(self) -> None:
        """Close the connections (the session can connect again later)."""
        with self._lock:
            if self._cluster is not None:
                self._cluster.shutdown()
            self._cluster, self._session = None, None
            self._prepared.clear()


INSERT_TWEET = ("INSERT INTO {ks}.tweets (id, author_id, text, created_at, fan_out) "
                "VALUES (?, ?, ?, ?, ?)")
INSERT_USER_TWEET = "INSERT INTO {ks}.user_tweets (author_id, tweet_id) VALUES (?, ?)"
INSERT_OUTBOX = ("INSERT INTO {ks}.outbox (bucket, event_id, topic, key, payload, headers) "
                 "VALUES (?, ?, ?, ?, ?, ?)")
DELETE_TWEET = "DELETE FROM {ks}.tweets WHERE id = ?"
DELETE_USER_TWEET = "DELETE FROM {ks}.user_tweets WHERE author_id = ? AND tweet_id = ?"
SELECT_TWEET = "SELECT id, author_id, text, created_at, fan_out FROM {ks}.tweets WHERE id = ?"
SELECT_AUTHOR_TWEET_IDS = ("SELECT tweet_id FROM {ks}.user_tweets WHERE author_id = ? "
                           "AND tweet_id < ? LIMIT ?")
INSERT_DELETED = "INSERT INTO {ks}.deleted_tweets (id, author_id) VALUES (?, ?) USING TTL ?"
SELECT_DELETED = "SELECT author_id FROM {ks}.deleted_tweets WHERE id = ?"


def outbox_bucket(author_id: int, buckets: int) -> int:
    """The outbox bucket of an author: all of one author's events share a bucket, in order.

    A hash rather than `author_id % buckets`, because the low bits of snowflake ids are
    mostly sequence zeros and would crowd a few buckets.
    """
    return zlib.crc32(str(author_id).encode()) % buckets


def to_outbox(event: TweetEvent, topic: str, buckets: int,
              headers: Mapping[str, str] | None = None) -> OutboxMessage:
    """Wrap a tweet event in the shared envelope, keyed and bucketed by its author."""
    envelope = events.Event(event_id=str(event.event_id), type=event.type,
                            payload=event.payload())
    return OutboxMessage(id=event.event_id, topic=topic, key=str(event.author_id),
                         payload=envelope.to_json(), headers=dict(headers or {}),
                         bucket=outbox_bucket(event.author_id, buckets))


def _outbox_values(message: OutboxMessage) -> tuple:
    return (message.bucket, message.id, message.topic, message.key,
            message.payload.decode(), dict(message.headers) or None)


class CassandraTweets:
    """The tweet repository: every change and its event in one logged batch.

    Events go to `topic`, in the outbox bucket of their author (one of `buckets`). A
    deleted tweet's author is remembered for `deleted_ttl` seconds (`deleted_author`).
    """

    def __init__(self, db: CassandraSession, topic: str, buckets: int = 16,
                 deleted_ttl: int = 24 * 3600) -> None:
        self.db, self.topic, self.buckets = db, topic, buckets
        self.deleted_ttl = deleted_ttl

    def save_posted(self, tweet: Tweet, event: TweetEvent,
                    headers: Mapping[str, str] | None = None) -> None:
        """Write the tweet, its author-timeline row and its outbox event atomically."""
        batch = self.db.batch()
        batch.add(self.db.prepare(INSERT_TWEET),
                  (tweet.id, tweet.author_id, tweet.text, tweet.created_at, tweet.fan_out))
        batch.add(self.db.prepare(INSERT_USER_TWEET), (tweet.author_id, tweet.id))
        batch.add(self.db.prepare(INSERT_OUTBOX),
                  _outbox_values(to_outbox(event, self.topic, self.buckets, headers)))
        self.db.execute(batch)

    def delete(self, tweet: Tweet, event: TweetEvent,
               headers: Mapping[str, str] | None = None) -> None:
        """Remove the tweet and its author-timeline row, and record the event and who
        deleted it, atomically."""
        batch = self.db.batch()
        batch.add(self.db.prepare(DELETE_TWEET), (tweet.id,))
        batch.add(self.db.prepare(DELETE_USER_TWEET), (tweet.author_id, tweet.id))
        batch.add(self.db.prepare(INSERT_DELETED), (tweet.id, tweet.author_id, self.deleted_ttl))
        batch.add(self.db.prepare(INSERT_OUTBOX),
                  _outbox_values(to_outbox(event, self.topic, self.buckets, headers)))
        self.db.execute(batch)

    def get_many(self, tweet_ids: Sequence[int]) -> dict[int, Tweet]:
        """The stored tweets among `tweet_ids`, read concurrently."""
        statement = self.db.prepare(SELECT_TWEET)
        if len(tweet_ids) == 1:
            rows = self.db.read(statement, (tweet_ids[0],))
        else:
            rows = [row for found in self.db.read_many(statement, [(t,) for t in tweet_ids])
                    for row in found]
        return {row.id: _tweet(row) for row in rows}

    def deleted_author(self, tweet_id: int) -> int | None:
        """The author of tweet `tweet_id` if it was deleted within `deleted_ttl` seconds."""
        rows = self.db.read(self.db.prepare(SELECT_DELETED), (tweet_id,))
        return rows[0].author_id if rows else None

    def author_tweet_ids(self, author_id: int, before: int | None, limit: int) -> list[int]:
        """The author's tweet ids below `before`, newest first."""
        rows = self.db.read(self.db.prepare(SELECT_AUTHOR_TWEET_IDS),
                            (author_id, before or MAX_ID, limit))
        return [row.tweet_id for row in rows]

    def recent_tweet_ids(self, author_ids: Sequence[int], before: int | None,
                         limit: int) -> list[int]:
        """The newest `limit` ids below `before` across several authors, newest first."""
        if not author_ids:
            return []
        results = self.db.read_many(self.db.prepare(SELECT_AUTHOR_TWEET_IDS),
                                    [(a, before or MAX_ID, limit) for a in author_ids])
        merged = {row.tweet_id for rows in results for row in rows}
        return sorted(merged, reverse=True)[:limit]


def _tweet(row) -> Tweet:
    # The driver returns naive datetimes that are UTC; fan_out is null for a tweet stored
    # before the decision was kept (schema 0006).
    return Tweet(row.id, row.author_id, row.text, row.created_at.replace(tzinfo=timezone.utc),
                 row.fan_out)

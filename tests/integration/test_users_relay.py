"""The users outbox relay against the test profile's real Postgres and Kafka.

Each test works on a scratch database migrated like the real one (so the NOTIFY channel,
the claims and the pruning are this test's alone, not shared with the platform's relay)
and publishes to the profile's real follows topic.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql as pgsql

from common import config, events, topics
from common.outbox import Relay, RelaySettings
from common.outbox_kafka import KafkaPublisher
from users.adapters.postgres import create_pool
from users.adapters import postgres_outbox
from users.adapters.postgres_outbox import PostgresOutbox, PostgresWakeups
from users.entrypoints import migrate

from integration._kafka import consumer_at_end, first_record
from conftest import wait_until

RETENTION = 3600


@pytest.fixture(scope="module")
def stores():
    """Stores pointing at a freshly migrated database, dropped afterwards."""
    base = config.stores()
    assert base.pg_database == "murmur_test", "run with MURMUR_PROFILE=test"
    scratch = dataclasses.replace(base, pg_database=f"murmur_test_relay_{uuid.uuid4().hex[:10]}")
    migrate.migrate(scratch)
    yield scratch
    with psycopg.connect(host=base.pg_host, port=base.pg_port, dbname="postgres",
                         user=base.pg_user, password=base.pg_password, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(scratch.pg_database)))


@pytest.fixture
def db(stores):
    """A connection to the scratch database, its outbox emptied first."""
    with psycopg.connect(stores.pg_conninfo, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox")
        yield conn


@pytest.fixture(scope="module")
def pool(stores):
    pool = create_pool(stores.pg_conninfo, min_size=1, max_size=3, timeout=5.0,
                       statement_timeout_ms=5000, name="test-users-relay")
    yield pool
    pool.close()


def enqueue_follow(db, topic: str, follower: int, followee: int) -> int:
    """An outbox row as the users service writes it (UserFollowed of `follower`)."""
    envelope = events.Event(event_id=str(uuid.uuid4()), type=events.USER_FOLLOWED,
                            payload={"follower_id": str(follower), "followee_id": str(followee)})
    (row_id,) = db.execute(
        "INSERT INTO outbox (topic, key, payload, headers) VALUES (%s, %s, %s, %s) RETURNING id",
        (topic, str(follower), envelope.to_json().decode(),
         json.dumps({"request_id": "req-relay"}))).fetchone()
    return row_id


def published_at(db, row_id: int):
    return db.execute("SELECT published_at FROM outbox WHERE id = %s", (row_id,)).fetchone()[0]


@pytest.fixture
def consumer(stores):
    consumer = consumer_at_end(stores.kafka_bootstrap, stores.topic(topics.FOLLOWS))
    yield consumer
    consumer.close()


def test_a_follow_reaches_the_follows_topic_at_once_and_is_marked_published(stores, db, pool,
                                                                          consumer):
    relay = Relay("users", PostgresOutbox(pool),
                  KafkaPublisher.to(stores.kafka_bootstrap, f"test-relay-{uuid.uuid4().hex}"),
                  wakeups=PostgresWakeups(stores.pg_conninfo),
                  # Sweeps far apart: only the NOTIFY can make the relay publish in time.
                  settings=RelaySettings(idle_poll=0.2, sweep_interval=3600))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: relay.owned)  # listening, its first sweep done
        time.sleep(0.5)
        follower, followee = 7_200_000_000_000_000_000 + uuid.uuid4().int % 10**9, 42
        row_id = enqueue_follow(db, stores.topic(topics.FOLLOWS), follower, followee)
        wait_until(lambda: published_at(db, row_id) is not None, timeout=10)
        record = first_record(consumer, lambda r: r.key == str(follower).encode())
    finally:
        stop.set()
        thread.join(timeout=20)
        relay.close()
    assert not thread.is_alive(), "the relay did not stop"
    assert record is not None, "UserFollowed never reached test.follows.v1"
    event = events.Event.from_json(record.value)
    assert event.type == "UserFollowed"
    assert event.payload == {"follower_id": str(follower), "followee_id": str(followee)}
    assert record.topic == "test.follows.v1"
    assert dict(record.headers)["request_id"] == b"req-relay"


def test_a_row_another_relay_holds_is_skipped_not_published_twice(stores, db, pool):
    topic = stores.topic(topics.FOLLOWS)
    held, free = enqueue_follow(db, topic, 1, 2), enqueue_follow(db, topic, 3, 4)
    with psycopg.connect(stores.pg_conninfo) as holder:
        # Play a relay that is mid-publish: it holds the first row locked.
        holder.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (held,))
        with PostgresOutbox(pool).claim(0, 500) as claim:
            assert [m.id for m in claim.messages] == [free]
            claim.settle(claim.messages)
        holder.rollback()
    assert published_at(db, held) is None and published_at(db, free) is not None


def test_a_claim_gives_the_row_as_it_goes_on_the_wire_and_marks_only_what_is_settled(
        stores, db, pool):
    topic = stores.topic(topics.FOLLOWS)
    first, second = enqueue_follow(db, topic, 5, 6), enqueue_follow(db, topic, 7, 8)
    with PostgresOutbox(pool).claim(0, 500) as claim:
        assert [m.id for m in claim.messages] == [first, second]
        message = claim.messages[0]
        assert (message.topic, message.key, message.bucket) == (topic, "5", 0)
        assert message.headers == {"request_id": "req-relay"}
        assert events.Event.from_json(message.payload).payload["follower_id"] == "5"
        assert b" " not in message.payload  # compact JSON, as the service wrote it
        claim.settle(claim.messages[:1])
    assert published_at(db, first) is not None and published_at(db, second) is None
    with pytest.raises(RuntimeError):
        with PostgresOutbox(pool).claim(0, 500) as claim:
            claim.settle(claim.messages)
            raise RuntimeError("the relay died before its commit")
    assert published_at(db, second) is None  # rolled back: it will be published again
    assert PostgresOutbox(pool).backlog() == 1


def test_a_notification_wakes_the_relay_and_silence_lets_it_sweep(stores, db):
    wakeups = PostgresWakeups(stores.pg_conninfo)
    try:
        assert wakeups.wait(0.05) == set()  # listening from now on
        enqueue_follow(db, stores.topic(topics.FOLLOWS), 9, 10)
        assert wakeups.wait(5) == {0}
        assert wakeups.wait(0.05) == set()
    finally:
        wakeups.close()


def test_published_rows_are_pruned_after_the_retention_in_bounded_batches(stores, db, pool):
    topic = stores.topic(topics.FOLLOWS)
    ages = {"old": 2 * RETENTION, "recent": RETENTION / 2}
    rows = {}
    for name, age in [("old", ages["old"])] * 5 + [("recent", ages["recent"])] * 2:
        row_id = enqueue_follow(db, topic, 11, 12)
        db.execute("UPDATE outbox SET published_at = now() - make_interval(secs => %s) "
                   "WHERE id = %s", (age, row_id))
        rows.setdefault(name, []).append(row_id)
    never_published = enqueue_follow(db, topic, 13, 14)
    db.execute("UPDATE outbox SET created_at = now() - interval '1 day' WHERE id = %s",
               (never_published,))

    outbox = PostgresOutbox(pool, retention=RETENTION)
    assert [outbox.prune(2) for _ in range(4)] == [2, 2, 1, 0]
    left = [r for (r,) in db.execute("SELECT id FROM outbox ORDER BY id").fetchall()]
    assert left == rows["recent"] + [never_published]
    # Retention 0: every published row goes, never an unpublished one.
    assert PostgresOutbox(pool, retention=0).prune(100) == 2
    assert [r for (r,) in db.execute("SELECT id FROM outbox").fetchall()] == [never_published]


def test_the_prune_walks_the_published_index_not_the_table(db):
    db.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index can serve
    plan = "\n".join(row[0] for row in db.execute(
        f"EXPLAIN {postgres_outbox.PRUNE}", (RETENTION, 1000)).fetchall())
    assert "outbox_published" in plan, plan

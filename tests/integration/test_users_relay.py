"""The follows outbox relay against the real Postgres and Kafka of the test profile."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid

import psycopg
import pytest
from kafka import KafkaConsumer

from common import topics
from users import config as users_config
from common.ids import LeasedIds, owner_name
from common.resilience import Breaker
from users.adapters.postgres import PostgresUsers
from users.bootstrap import pg_pool, redis_client
from users.domain import UserFollowed
from users.relay import OutboxRelay, kafka_producer


@pytest.fixture(scope="module")
def cfg():
    config = dataclasses.replace(users_config.load(), pg_pool_min=1, pg_pool_max=4)
    assert config.stores.pg_database == "murmur_test", "run with MURMUR_PROFILE=test"
    return config


@pytest.fixture(scope="module")
def pool(cfg):
    pool = pg_pool(cfg)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def repo(cfg, pool):
    return PostgresUsers(pool, cfg.topic(topics.FOLLOWS), breaker=Breaker("postgres-relay-test"))


@pytest.fixture(scope="module")
def ids(cfg):
    client = redis_client(cfg)
    ids = LeasedIds(client, owner_name("users-test"), cfg.worker_lease_prefix,
                    cfg.worker_lease_ttl)
    yield ids
    ids.close()
    client.close()


@pytest.fixture
def make_user(repo, ids):
    def make() -> int:
        return repo.add(ids.next_id(), f"relay_{uuid.uuid4().hex[:12]}", "", "x").id
    return make


def outbox_rows(pool, follower_id: int) -> list[tuple]:
    with pool.connection() as conn:
        return conn.execute("SELECT id, published_at FROM outbox WHERE key = %s ORDER BY id",
                            (str(follower_id),)).fetchall()


def wait_until(predicate, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def relay(cfg, pool):
    relay = OutboxRelay(pool, lambda: kafka_producer(cfg), listen_conninfo=cfg.stores.pg_conninfo,
                        poll_interval=0.05, retry_backoff=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    yield relay
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the relay did not stop"


def test_a_follow_reaches_the_follows_topic_and_is_marked_published(cfg, pool, repo, make_user, relay):
    follower, followee = make_user(), make_user()
    consumer = KafkaConsumer(cfg.topic(topics.FOLLOWS), bootstrap_servers=cfg.stores.kafka_bootstrap,
                             group_id=f"test-users-relay-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=500, request_timeout_ms=11000,
                             session_timeout_ms=10000)
    try:
        assert repo.follow(UserFollowed(follower, followee))
        wait_until(lambda: all(row[1] is not None for row in outbox_rows(pool, follower)))

        def our_event():
            for record in consumer:
                if record.key == str(follower).encode():
                    return record
            return None

        record = wait_until(our_event, timeout=30)
    finally:
        consumer.close()
    envelope = json.loads(record.value)
    assert envelope["type"] == "UserFollowed"
    assert envelope["payload"] == {"follower_id": str(follower), "followee_id": str(followee)}
    assert record.topic == "test.follows.v1"


def test_a_row_another_relay_holds_is_skipped_not_published_twice(cfg, pool, repo, make_user):
    sent = []

    class RecordingProducer:
        def send(self, topic, key, value, headers):
            sent.append(key)
            raise ConnectionError("stop after recording")  # leaves other rows unpublished

        def close(self, timeout=None):
            pass

    holder = psycopg.connect(cfg.stores.pg_conninfo)
    try:
        # Play a relay that is mid-publish: it holds our unpublished row locked. A relay
        # of the running platform may publish the row first; then try again with another.
        for _ in range(50):
            follower = make_user()
            repo.follow(UserFollowed(follower, make_user()))
            held = holder.execute(
                "SELECT id FROM outbox WHERE key = %s AND published_at IS NULL FOR UPDATE",
                (str(follower),)).fetchall()
            if held:
                break
            holder.rollback()
        assert held, "never got hold of an unpublished row"
        OutboxRelay(pool, RecordingProducer).publish_batch()
        assert str(follower).encode() not in sent
        assert outbox_rows(pool, follower)[0][1] is None
    finally:
        holder.rollback()
        holder.close()

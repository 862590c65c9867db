"""Each store of the platform does its job for real, in the test profile's namespace."""

from __future__ import annotations

import uuid

import pytest

from conftest import unique


def test_a_postgres_transaction_commits_and_rolls_back(pg, stores):
    import psycopg

    table = unique("probe")
    pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text)")
    pg.commit()
    try:
        with pg.transaction():
            pg.execute(f"INSERT INTO {table} VALUES (1, 'kept')")
        with pytest.raises(RuntimeError):
            with pg.transaction():
                pg.execute(f"INSERT INTO {table} VALUES (2, 'dropped')")
                raise RuntimeError("abort this transaction")
        # A second connection sees exactly what was committed.
        with psycopg.connect(stores.pg_conninfo) as other:
            rows = other.execute(f"SELECT id, note FROM {table} ORDER BY id").fetchall()
        assert rows == [(1, "kept")]
    finally:
        pg.rollback()
        pg.execute(f"DROP TABLE {table}")
        pg.commit()


def test_a_cassandra_write_reads_back_at_the_configured_consistency(cassandra_session, stores):
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    level = ConsistencyLevel.name_to_value[stores.cassandra_consistency]
    cassandra_session.execute(
        "CREATE TABLE IF NOT EXISTS platform_probe (id uuid PRIMARY KEY, note text)")
    row_id = uuid.uuid4()
    write = SimpleStatement("INSERT INTO platform_probe (id, note) VALUES (%s, %s)",
                            consistency_level=level)
    cassandra_session.execute(write, (row_id, "hello"))
    read = SimpleStatement("SELECT note FROM platform_probe WHERE id = %s", consistency_level=level)
    result = cassandra_session.execute(read, (row_id,))
    assert result.one().note == "hello"
    assert result.response_future.message.consistency_level == level


def test_an_uncommitted_kafka_message_is_redelivered_after_the_consumer_restarts(stores):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic, group = stores.topic(unique("probe")), unique("group")
    admin = KafkaAdminClient(bootstrap_servers=stores.kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=stores.kafka_bootstrap)
    for value in (b"first", b"second"):
        producer.send(topic, value, key=b"k").get(timeout=30)
    producer.close()

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(topic, bootstrap_servers=stores.kafka_bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000)

    try:
        first = consumer()
        received = next(iter(first))
        assert received.value == b"first"
        first.commit()  # processed: commit its offset
        unprocessed = next(iter(first))
        assert unprocessed.value == b"second"  # read but never committed
        first.close(autocommit=False)

        second = consumer()
        redelivered = next(iter(second))
        assert redelivered.value == b"second"
        assert redelivered.offset == unprocessed.offset
        second.commit()
        second.close(autocommit=False)
    finally:
        admin.delete_topics([topic])
        admin.close()


def test_redis_sorted_set_operations_keep_order_and_cap(redis_client):
    key = unique("zset")
    try:
        redis_client.zadd(key, {"a": 3, "b": 1, "c": 2})
        assert redis_client.zadd(key, {"a": 3}) == 0  # idempotent
        assert redis_client.zrevrange(key, 0, -1) == [b"a", b"c", b"b"]
        redis_client.zremrangebyrank(key, 0, -3)  # keep the newest two
        assert redis_client.zrange(key, 0, -1, withscores=True) == [(b"c", 2.0), (b"a", 3.0)]
        assert redis_client.zrem(key, "c") == 1
        assert redis_client.zcard(key) == 1
    finally:
        redis_client.delete(key)


def test_the_test_profile_keeps_its_own_namespace(stores):
    from common import config

    dev = config.PROFILES["dev"]
    assert (stores.pg_database, stores.keyspace, stores.topic_prefix, stores.redis_db) != (
        dev.pg_database, dev.keyspace, dev.topic_prefix, dev.redis_db)
    assert stores.topic("tweets.v1") == "test.tweets.v1"

"""Both outbox relays export how many rows wait to be published (`murmur_outbox_backlog`)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from prometheus_client import REGISTRY

from common.outbox import Claim, FixedBuckets, OutboxMessage, PublishFailed, Relay, RelaySettings
from timeline.adapters.cassandra_outbox import CassandraOutbox
from users.adapters.postgres_outbox import PostgresOutbox


def backlog(outbox: str) -> float | None:
    return REGISTRY.get_sample_value("murmur_outbox_backlog", {"outbox": outbox})


class Outbox(CassandraOutbox):
    """The timeline outbox's counting (none: the relay reports what its claims saw),
    over in-memory buckets instead of Cassandra."""

    def __init__(self, rows: dict[int, int]) -> None:
        self.rows = {bucket: [OutboxMessage(i, "test.tweets.v1", "7", b"{}", {}, bucket)
                              for i in range(1, count + 1)] for bucket, count in rows.items()}

    @contextmanager
    def claim(self, bucket, limit):
        rows = self.rows.get(bucket, [])

        def settle(published):
            del rows[:len(published)]

        yield Claim(rows[:limit], settle)

    def forget(self, bucket):
        pass


class Broker:
    def __init__(self, acks: list[int | None]) -> None:
        self.acks = acks  # per publish: how many to acknowledge; None: the broker is down

    def publish(self, messages):
        acked = self.acks.pop(0)
        if acked is None or acked < len(messages):
            raise PublishFailed("broker down", acked or 0)
        return acked


def test_the_timeline_backlog_counts_rows_left_pending_in_each_owned_bucket():
    leases = FixedBuckets([0, 1])
    relay = Relay("timeline", Outbox({0: 3, 1: 1}), Broker([1, None, 2]), leases=leases,
                  settings=RelaySettings(batch=10, backlog_interval=0))
    relay.renew_leases(force=True)

    with pytest.raises(PublishFailed):
        relay.relay_bucket(0)
    relay.refresh_backlog()
    assert backlog("timeline") == 2  # one of three acknowledged
    with pytest.raises(PublishFailed):
        relay.relay_bucket(1)
    relay.refresh_backlog()
    assert backlog("timeline") == 3  # and bucket 1's row, unpublished while Kafka is down
    relay.relay_bucket(0)
    leases.buckets = [0]
    relay.renew_leases(force=True)
    relay.refresh_backlog()
    assert backlog("timeline") == 0  # drained, and a lost bucket is no longer ours to count


class Pool:
    def __init__(self, pending: int) -> None:
        self.pending = pending

    @contextmanager
    def connection(self, timeout=None):
        pool = self

        class Conn:
            def execute(self, query, params=None):
                assert query.startswith("SELECT count(*)")
                return type("Cursor", (), {"fetchone": lambda _s: (pool.pending,)})()

        yield Conn()


def test_the_users_backlog_is_the_count_of_unpublished_rows():
    relay = Relay("users", PostgresOutbox(Pool(pending=42)), Broker([]),
                  settings=RelaySettings(batch=10))
    relay.refresh_backlog()
    assert backlog("users") == 42


def test_while_the_store_cannot_count_the_last_backlog_stays_exported():
    class Down(Pool):
        @contextmanager
        def connection(self, timeout=None):
            raise ConnectionError("postgres down")
            yield

    Relay("users", PostgresOutbox(Pool(pending=7)), Broker([])).refresh_backlog()
    Relay("users", PostgresOutbox(Down(pending=0)), Broker([])).refresh_backlog()
    assert backlog("users") == 7

"""Both outbox relays export how many rows wait to be published (`murmur_outbox_backlog`)."""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY

from timeline.domain import OutboxMessage
from timeline.relay import PublishFailed, Relay
from users.relay import OutboxRelay


def backlog(outbox: str) -> float | None:
    return REGISTRY.get_sample_value("murmur_outbox_backlog", {"outbox": outbox})


class Outbox:
    def __init__(self, bucket: int, count: int) -> None:
        self.rows = {bucket: [OutboxMessage(bucket, i, "test.tweets.v1", "7", b"{}", {})
                              for i in range(1, count + 1)]}

    def pending(self, bucket, after, limit):
        return [e for e in self.rows.get(bucket, []) if e.event_id > after][:limit]

    def remove(self, bucket, event_ids):
        self.rows[bucket] = [e for e in self.rows[bucket] if e.event_id not in event_ids]


class Broker:
    def __init__(self, acks: list[int | None]) -> None:
        self.acks = acks  # per publish: how many to acknowledge; None: the broker is down

    def publish(self, events):
        acked = self.acks.pop(0)
        if acked is None:
            raise PublishFailed("broker down")
        return acked


class Leases:
    def __init__(self, owned) -> None:
        self.owned = owned

    def maintain(self):
        return self.owned

    def release(self):
        pass


def test_the_timeline_backlog_counts_rows_left_pending_in_each_owned_bucket():
    outbox = Outbox(0, 3)
    outbox.rows[1] = [OutboxMessage(1, 9, "test.tweets.v1", "8", b"{}", {})]
    relay = Relay(outbox, Broker([1, None, 2]), Leases([0, 1]), batch=10)
    relay.renew_leases(force=True)

    relay.relay_bucket(0)
    assert backlog("timeline") == 2  # one of three acknowledged
    try:
        relay.relay_bucket(1)
    except PublishFailed:
        pass
    assert backlog("timeline") == 3  # and bucket 1's row, unpublished while Kafka is down
    relay.relay_bucket(0)
    relay.leases.owned = [0]
    relay.renew_leases(force=True)
    assert backlog("timeline") == 0  # drained, and a lost bucket is no longer ours to count


class Pool:
    def __init__(self, pending: int) -> None:
        self.pending = pending

    def connection(self, timeout=None):
        pool = self

        class Conn:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def transaction(self):
                return self

            def execute(self, query, params=None):
                if query.startswith("SELECT count(*)"):
                    return type("Cursor", (), {"fetchone": lambda _s: (pool.pending,)})()
                return type("Cursor", (), {"fetchall": lambda _s: []})()

        return Conn()


def test_the_users_backlog_is_the_count_of_unpublished_rows():
    stop = threading.Event()
    relay = OutboxRelay(Pool(pending=42), lambda: None, poll_interval=0.01)
    relay._wait_for_work = lambda _stop: stop.set()  # one pass of the loop
    relay.run(stop)
    assert backlog("users") == 42

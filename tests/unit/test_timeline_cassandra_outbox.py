"""The Cassandra outbox's reads: whole buckets at first, then from a recent watermark."""

from __future__ import annotations

from types import SimpleNamespace

from common import ids
from common.outbox import FixedBuckets, Relay, RelaySettings
from timeline.adapters import cassandra_outbox
from timeline.adapters.cassandra_outbox import (LATE_WINDOW_MS, RESCAN_INTERVAL,
                                                RESCAN_WINDOW_MS, CassandraOutbox, id_floor)

NOW_MS = 1_800_000_000_000


class Batch:
    def __init__(self) -> None:
        self.ops: list[tuple] = []

    def add(self, statement, params):
        assert statement == cassandra_outbox.DELETE_OUTBOX
        self.ops.append(params)


class FakeDb:
    """The outbox table, answering the adapter's two statements."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[int, SimpleNamespace]] = {}
        self.reads: list[tuple[int, int]] = []  # (bucket, after) of every read
        self.session = self

    def add(self, bucket: int, event_id: int) -> int:
        self.rows.setdefault(bucket, {})[event_id] = SimpleNamespace(
            event_id=event_id, topic="test.tweets.v1", key="7", payload="{}",
            headers={"request_id": "r"})
        return event_id

    def prepare(self, cql):
        return cql

    def batch(self, batch_type):
        return Batch()

    def execute(self, statement, params=None):
        if statement == cassandra_outbox.SELECT_OUTBOX:
            bucket, after, limit = params
            self.reads.append((bucket, after))
            rows = self.rows.get(bucket, {})
            return [rows[e] for e in sorted(rows) if e > after][:limit]
        for bucket, event_id in statement.ops:  # the delete batch
            del self.rows[bucket][event_id]
        return []


class Broker:
    def __init__(self) -> None:
        self.published: list[int] = []

    def publish(self, messages):
        self.published += [m.id for m in messages]
        return len(messages)


class Clock:
    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> float:
        return self.ms / 1000


def snowflake_at(unix_ms: int, seq: int = 0) -> int:
    return id_floor(unix_ms) | seq


def relay_over(db, clock, owned=(0,), batch=10):
    outbox = CassandraOutbox(db, clock=clock)
    broker = Broker()
    relay = Relay("timeline", outbox, broker, leases=FixedBuckets(owned),
                  settings=RelaySettings(batch=batch))
    return relay, broker


def test_the_id_floor_is_below_every_id_of_that_millisecond():
    gen = ids.IdGenerator(1023, clock_ms=lambda: NOW_MS)
    assert id_floor(NOW_MS) <= gen.next_id() < id_floor(NOW_MS + 1)


def test_published_rows_are_deleted_with_their_bucket_headers_and_payload():
    db, clock = FakeDb(), Clock()
    event = db.add(3, snowflake_at(NOW_MS - 1000))
    relay, broker = relay_over(db, clock, owned=(3,))
    with relay.outbox.claim(3, 10) as claim:
        (message,) = claim.messages
        assert (message.id, message.bucket, message.payload) == (event, 3, b"{}")
        assert message.headers == {"request_id": "r"}
    assert relay.run_once() == (1, True)
    assert db.rows[3] == {} and broker.published == [event]


def test_a_drained_bucket_is_read_from_a_recent_watermark_only():
    db, clock = FakeDb(), Clock()
    db.add(0, snowflake_at(NOW_MS - 1000))
    relay, broker = relay_over(db, clock)
    relay.run_once()
    relay.run_once()
    assert db.reads[0] == (0, 0)  # a bucket taken over is read whole
    assert db.reads[-1] == (0, id_floor(NOW_MS - LATE_WINDOW_MS))
    late = db.add(0, snowflake_at(NOW_MS - 5000))  # its batch landed a little late
    relay.run_once()
    assert late in broker.published


def test_a_bucket_not_drained_keeps_its_watermark():
    db, clock = FakeDb(), Clock()
    for seq in range(3):
        db.add(0, snowflake_at(NOW_MS - 1000, seq))
    relay, _ = relay_over(db, clock, batch=2)
    relay.run_once()  # a full batch: there may be more
    relay.run_once()
    assert [after for _, after in db.reads] == [0, 0]


def test_the_periodic_rescan_looks_further_back_for_very_late_rows():
    db, clock = FakeDb(), Clock()
    relay, broker = relay_over(db, clock)
    relay.run_once()  # drained: the watermark moves up
    very_late = db.add(0, snowflake_at(NOW_MS - 120_000))  # two minutes late
    relay.run_once()
    assert broker.published == []
    clock.ms += int(RESCAN_INTERVAL * 1000)
    relay.run_once()
    assert db.reads[-1] == (0, id_floor(clock.ms - RESCAN_WINDOW_MS))
    assert broker.published == [very_late]


def test_a_bucket_whose_lease_was_lost_is_read_whole_when_it_comes_back():
    db, clock = FakeDb(), Clock()
    db.add(1, snowflake_at(NOW_MS - 1000))
    relay, _ = relay_over(db, clock, owned=(1,))
    relay.run_once()
    relay.leases.buckets = []
    relay.renew_leases(force=True)
    relay.leases.buckets = [1]
    relay.renew_leases(force=True)
    relay.run_once()
    assert db.reads[-1] == (1, 0)


def test_the_timeline_outbox_keeps_nothing_to_prune_and_counts_nothing():
    outbox = CassandraOutbox(FakeDb())
    assert outbox.prune(1000) == 0 and outbox.backlog() is None

"""The outbox relay's loop, against an in-memory outbox, broker and leases."""

from __future__ import annotations

import threading

import pytest

from common import ids
from timeline import relay as relay_module
from timeline.domain import OutboxMessage
from timeline.relay import PublishFailed, Relay


class FakeOutbox:
    def __init__(self) -> None:
        self.rows: dict[int, dict[int, OutboxMessage]] = {}
        self.queries: list[tuple[int, int]] = []

    def add(self, bucket: int, event_id: int) -> OutboxMessage:
        event = OutboxMessage(bucket, event_id, "test.tweets.v1", "7", b"{}", {})
        self.rows.setdefault(bucket, {})[event_id] = event
        return event

    def pending(self, bucket, after, limit):
        self.queries.append((bucket, after))
        rows = sorted(e for e in self.rows.get(bucket, {}) if e > after)[:limit]
        return [self.rows[bucket][e] for e in rows]

    def remove(self, bucket, event_ids):
        for event_id in event_ids:
            del self.rows[bucket][event_id]


class FakeBroker:
    def __init__(self) -> None:
        self.published: list[int] = []
        self.down = False
        self.ack_only = None  # acknowledge only this many of the next publish

    def publish(self, events):
        if self.down:
            raise PublishFailed("broker down")
        acked = len(events) if self.ack_only is None else self.ack_only
        self.ack_only = None
        self.published += [e.event_id for e in events[:acked]]
        return acked


class FakeLeases:
    def __init__(self, owned) -> None:
        self.owned = list(owned)
        self.released = False

    def maintain(self):
        return self.owned

    def release(self):
        self.released = True


def snowflake_at(unix_ms: int, seq: int = 0) -> int:
    return relay_module.id_floor(unix_ms) | seq


NOW_MS = 1_800_000_000_000


@pytest.fixture
def outbox():
    return FakeOutbox()


@pytest.fixture
def broker():
    return FakeBroker()


def make_relay(outbox, broker, owned=(0, 1), batch=10) -> Relay:
    return Relay(outbox, broker, FakeLeases(owned), batch=batch, clock=lambda: NOW_MS / 1000)


def test_events_are_published_in_order_and_then_removed(outbox, broker):
    for seq in (3, 1, 2):
        outbox.add(0, snowflake_at(NOW_MS - 1000, seq))
    published, drained = make_relay(outbox, broker).run_once()
    assert broker.published == sorted(broker.published) and published == 3
    assert drained and outbox.rows[0] == {}


def test_only_the_acknowledged_prefix_is_removed(outbox, broker):
    events = [outbox.add(0, snowflake_at(NOW_MS - 1000, s)).event_id for s in range(4)]
    broker.ack_only = 2
    relay = make_relay(outbox, broker)
    published, drained = relay.run_once()
    assert published == 2 and not drained
    assert sorted(outbox.rows[0]) == events[2:]
    relay.run_once()
    assert outbox.rows[0] == {} and broker.published == events


def test_nothing_is_removed_while_the_broker_is_down(outbox, broker):
    event = outbox.add(1, snowflake_at(NOW_MS - 1000)).event_id
    broker.down = True
    relay = make_relay(outbox, broker)
    with pytest.raises(PublishFailed):
        relay.run_once()
    assert list(outbox.rows[1]) == [event]
    broker.down = False
    relay.run_once()
    assert broker.published == [event] and outbox.rows[1] == {}


def test_buckets_owned_by_another_relay_are_left_alone(outbox, broker):
    outbox.add(5, snowflake_at(NOW_MS - 1000))
    make_relay(outbox, broker, owned=(0, 1)).run_once()
    make_relay(outbox, broker, owned=(0, 1)).run_once(buckets=[5])
    assert broker.published == [] and len(outbox.rows[5]) == 1


def test_a_bucket_larger_than_a_batch_is_not_reported_drained(outbox, broker):
    for seq in range(5):
        outbox.add(0, snowflake_at(NOW_MS - 1000, seq))
    relay = make_relay(outbox, broker, owned=(0,), batch=2)
    assert relay.run_once() == (2, False)
    assert relay.run_once() == (2, False)
    assert relay.run_once() == (1, True)


def test_a_drained_bucket_is_scanned_from_a_recent_watermark_only(outbox, broker):
    outbox.add(0, snowflake_at(NOW_MS - 1000))
    relay = make_relay(outbox, broker, owned=(0,))
    relay.run_once()
    relay.run_once()
    first_after, second_after = outbox.queries[0][1], outbox.queries[-1][1]
    assert first_after == 0
    assert second_after == relay_module.id_floor(NOW_MS - relay_module.LATE_WINDOW_MS)
    late = outbox.add(0, snowflake_at(NOW_MS - 5000)).event_id  # landed a little late
    relay.run_once()
    assert late in broker.published


def test_the_id_floor_is_below_every_id_of_that_millisecond():
    gen = ids.IdGenerator(1023, clock_ms=lambda: NOW_MS)
    assert relay_module.id_floor(NOW_MS) <= gen.next_id() < relay_module.id_floor(NOW_MS + 1)


def test_serve_keeps_going_through_a_broker_outage_and_stops_on_request(outbox, broker):
    broker.down = True
    outbox.add(0, snowflake_at(NOW_MS - 1000))
    relay = make_relay(outbox, broker, owned=(0,))
    stop = threading.Event()

    class Wakeups:
        calls = 0

        def wait(self, timeout):
            Wakeups.calls += 1
            if outbox.rows[0] == {}:
                stop.set()
            return set()

    attempts = []
    original = broker.publish

    def flaky(events):
        attempts.append(len(events))
        if len(attempts) >= 3:
            broker.down = False
        return original(events)

    broker.publish = flaky
    relay_module.serve(relay, Wakeups(), stop, idle_poll=0.001, sweep_interval=0.0)
    assert len(attempts) >= 3 and outbox.rows[0] == {}
    assert stop.is_set()

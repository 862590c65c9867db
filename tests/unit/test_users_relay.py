"""The outbox relay's publish-then-mark logic, against a fake database and producer."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from users.relay import OutboxRelay


class FakeFuture:
    def __init__(self, ok: bool) -> None:
        self.is_done, self._ok = True, ok
        self.exception = None if ok else RuntimeError("broker said no")

    def succeeded(self):
        return self._ok

    def failed(self):
        return not self._ok


class FakeProducer:
    def __init__(self, refuse_keys: set[str] = frozenset()) -> None:
        self.sent: list[tuple] = []
        self.refuse_keys = refuse_keys
        self.closed = False

    def send(self, topic, key, value, headers):
        self.sent.append((topic, key, value, headers))
        return FakeFuture(key.decode() not in self.refuse_keys)

    def flush(self, timeout):
        pass

    def close(self, timeout=None):
        self.closed = True


class FakeConnection:
    def __init__(self, rows) -> None:
        self.rows, self.marked = rows, []

    @contextmanager
    def transaction(self):
        yield

    def execute(self, query, params=None):
        if query.startswith("SELECT count(*)"):  # the backlog gauge
            pending = sum(1 for row in self.rows if row[0] not in self.marked)
            return type("Cursor", (), {"fetchone": lambda _self: (pending,)})()
        if query.startswith("SELECT"):
            return type("Cursor", (), {"fetchall": lambda _self: list(self.rows)})()
        self.marked.extend(params[0])
        return None


class FakePool:
    def __init__(self, rows) -> None:
        self.conn = FakeConnection(rows)

    @contextmanager
    def connection(self, timeout=None):
        yield self.conn


ROWS = [
    (1, "test.follows.v1", "10", {"type": "UserFollowed", "payload": {"follower_id": "10"}},
     {"request_id": "abc"}),
    (2, "test.follows.v1", "11", {"type": "UserFollowed", "payload": {"follower_id": "11"}}, {}),
]


def test_rows_are_sent_in_order_with_key_headers_and_then_marked():
    pool, producer = FakePool(ROWS), FakeProducer()
    assert OutboxRelay(pool, lambda: producer).publish_batch() == (2, 0)
    assert [s[1] for s in producer.sent] == [b"10", b"11"]
    assert producer.sent[0][3] == [("request_id", b"abc")]
    assert producer.sent[0][2].startswith(b'{"type":"UserFollowed"')
    assert pool.conn.marked == [1, 2]


def test_only_rows_the_broker_acknowledged_are_marked():
    pool = FakePool(ROWS)
    relay = OutboxRelay(pool, lambda: FakeProducer(refuse_keys={"11"}))
    assert relay.publish_batch() == (1, 1)
    assert pool.conn.marked == [1]


def test_nothing_is_marked_while_kafka_is_unreachable():
    def no_broker():
        raise ConnectionError("no brokers available")

    pool = FakePool(ROWS)
    assert OutboxRelay(pool, no_broker).publish_batch() == (0, 2)
    assert pool.conn.marked == []


def test_an_empty_outbox_needs_no_producer():
    def forbidden():
        raise AssertionError("a producer was created for nothing")

    assert OutboxRelay(FakePool([]), forbidden).publish_batch() == (0, 0)


def test_the_loop_stops_when_asked_and_closes_the_producer():
    producer = FakeProducer()
    relay = OutboxRelay(FakePool(ROWS[:1]), lambda: producer, poll_interval=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while not producer.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    assert producer.sent, "the relay never published"
    assert not thread.is_alive() and producer.closed


def test_retries_back_off_exponentially_up_to_a_cap():
    relay = OutboxRelay(FakePool([]), FakeProducer, retry_backoff=0.5, max_backoff=3.0)
    waits = []
    for failures in range(1, 6):
        relay._failures = failures
        waits.append(relay._backoff())
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]

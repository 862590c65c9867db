"""The outbox relay engine against in-memory fakes of its ports (common.outbox)."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager

import pytest
from kafka import errors as kafka_errors

from common import outbox_kafka, outbox_process
from common.outbox import (Claim, FixedBuckets, OutboxMessage, PublishFailed, Relay,
                           RelaySettings)
from common.service import Service

TOPIC = "test.things.v1"


def message(bucket: int, message_id: int, key: str = "7") -> OutboxMessage:
    return OutboxMessage(message_id, TOPIC, key, b'{"n":%d}' % message_id,
                         {"request_id": f"r{message_id}"}, bucket)


class FakeOutbox:
    """Buckets of pending messages; settling removes them, like a delete or a mark."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[int, OutboxMessage]] = {}
        self.claims: list[int] = []
        self.forgotten: list[int] = []
        self.counted: int | None = None  # what backlog() answers (None: cannot count)
        self.prunes: list[int] = []  # limits prune() was called with
        self.pruned: list[int] = []  # what successive prunes answer
        self.down = False  # the store refuses every call

    def add(self, bucket: int, *message_ids: int) -> list[int]:
        for message_id in message_ids:
            self.rows.setdefault(bucket, {})[message_id] = message(bucket, message_id)
        return list(message_ids)

    def pending(self, bucket: int) -> list[int]:
        return sorted(self.rows.get(bucket, {}))

    @contextmanager
    def claim(self, bucket, limit):
        if self.down:
            raise ConnectionError("store down")
        self.claims.append(bucket)
        rows = self.rows.get(bucket, {})

        def settle(published):
            for m in published:
                del rows[m.id]

        yield Claim([rows[i] for i in sorted(rows)][:limit], settle)

    def backlog(self):
        return self.counted

    def prune(self, limit):
        self.prunes.append(limit)
        if self.down:
            raise ConnectionError("store down")
        return self.pruned.pop(0) if self.pruned else 0

    def forget(self, bucket):
        self.forgotten.append(bucket)


class FakeBroker:
    def __init__(self) -> None:
        self.published: list[int] = []
        self.down = False
        self.refusing = False  # the broker answers every publish with a refusal
        self.ack_only: int | None = None  # acknowledge only this many of the next publish
        self.closed = False

    def publish(self, messages):
        if self.down:
            raise PublishFailed("broker down")
        if self.refusing:
            raise PublishFailed("MessageSizeTooLargeError: too large", outage=False)
        acked = len(messages) if self.ack_only is None else self.ack_only
        self.ack_only = None
        self.published += [m.id for m in messages[:acked]]
        if acked < len(messages):
            raise PublishFailed("not all acknowledged", acked)
        return acked

    def close(self):
        self.closed = True


class FakeLeases(FixedBuckets):
    released = False

    def release(self):
        self.released = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def outbox():
    return FakeOutbox()


@pytest.fixture
def broker():
    return FakeBroker()


def make_relay(outbox, broker, owned=(0, 1), batch=10, **settings) -> Relay:
    return Relay("test", outbox, broker, leases=FakeLeases(owned),
                 settings=RelaySettings(batch=batch, **settings))


# --------------------------------------------------------------------- one pass


def test_messages_are_published_in_order_and_then_settled(outbox, broker):
    outbox.add(0, 3, 1, 2)
    assert make_relay(outbox, broker).run_once() == (3, True)
    assert broker.published == [1, 2, 3]
    assert outbox.pending(0) == []


def test_only_the_acknowledged_prefix_is_settled(outbox, broker):
    ids = outbox.add(0, 1, 2, 3, 4)
    broker.ack_only = 2
    relay = make_relay(outbox, broker)
    with pytest.raises(PublishFailed):
        relay.run_once()
    assert outbox.pending(0) == ids[2:]
    assert relay.run_once() == (2, True)
    assert outbox.pending(0) == [] and broker.published == ids


def test_nothing_is_settled_while_the_broker_is_down(outbox, broker):
    outbox.add(1, 5)
    broker.down = True
    relay = make_relay(outbox, broker)
    with pytest.raises(PublishFailed):
        relay.run_once()
    assert outbox.pending(1) == [5]
    broker.down = False
    relay.run_once()
    assert broker.published == [5] and outbox.pending(1) == []


def test_an_empty_outbox_is_not_published(outbox):
    class NoBroker(FakeBroker):
        def publish(self, messages):
            raise AssertionError("published nothing")

    assert make_relay(outbox, NoBroker()).run_once() == (0, True)


def test_buckets_the_relay_does_not_own_are_left_alone(outbox, broker):
    outbox.add(5, 1)
    relay = make_relay(outbox, broker, owned=(0, 1))
    relay.run_once()
    relay.run_once(buckets=[5])
    assert broker.published == [] and 5 not in outbox.claims


def test_a_bucket_whose_lease_is_lost_is_forgotten_by_the_store(outbox, broker):
    leases = FakeLeases([0, 1])
    relay = Relay("test", outbox, broker, leases=leases)
    relay.renew_leases(force=True)
    leases.buckets = [0]
    assert relay.renew_leases(force=True) == [0]
    assert outbox.forgotten == [1]


def test_a_bucket_larger_than_a_batch_is_not_reported_drained(outbox, broker):
    outbox.add(0, *range(1, 6))
    relay = make_relay(outbox, broker, owned=(0,), batch=2)
    assert [relay.run_once() for _ in range(3)] == [(2, False), (2, False), (1, True)]


# --------------------------------------------------------------------- the loop


def run_in_thread(relay: Relay) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def wait_for(predicate, timeout=5.0):
    done = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        done.wait(0.005)
    raise AssertionError("condition not met")


def test_retries_back_off_exponentially_up_to_a_cap(outbox, broker):
    relay = make_relay(outbox, broker, retry_backoff=0.5, max_backoff=3.0)
    waits = []
    for failures in range(1, 6):
        relay.failures = failures
        waits.append(relay.backoff())
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_loop_rides_out_an_outage_warns_once_and_says_when_it_recovers(outbox, broker,
                                                                         caplog):
    outbox.add(0, 1)
    broker.down = True
    attempts = []
    publish = broker.publish

    def flaky(messages):
        attempts.append(len(messages))
        if len(attempts) == 4:
            broker.down = False
        return publish(messages)

    broker.publish = flaky
    relay = make_relay(outbox, broker, owned=(0,), idle_poll=0.001, retry_backoff=0.001)
    with caplog.at_level(logging.INFO, logger="murmur.outbox"):
        stop, thread = run_in_thread(relay)
        wait_for(lambda: outbox.pending(0) == [])
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert broker.published == [1] and len(attempts) == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot publish" in warnings[0].getMessage()
    assert any("publishing again after 3 failed attempts" in r.getMessage()
               for r in caplog.records)


def test_a_broker_refusing_a_message_is_an_error_said_once_and_still_retried(outbox, broker,
                                                                            caplog):
    outbox.add(0, 1)
    broker.down = True  # away first: a warning ...
    relay = make_relay(outbox, broker, owned=(0,), idle_poll=0.001, retry_backoff=0.001)
    with caplog.at_level(logging.INFO, logger="murmur.outbox"):
        stop, thread = run_in_thread(relay)
        wait_for(lambda: relay.failures >= 2)
        broker.down, broker.refusing = False, True  # ... then refusing: an error, once
        wait_for(lambda: relay.failures >= 6)
        broker.refusing = False
        wait_for(lambda: outbox.pending(0) == [])
        stop.set()
        thread.join(5)
    assert broker.published == [1]
    said = [(r.levelno, r.getMessage()) for r in caplog.records
            if r.levelno >= logging.WARNING]
    assert said == [(logging.WARNING, "test outbox relay cannot publish, will retry: "
                                      "PublishFailed: broker down"),
                    (logging.ERROR, "test outbox relay: the broker refused a message, will "
                                    "retry: MessageSizeTooLargeError: too large")]


def test_a_store_outage_is_retried_like_a_broker_outage(outbox, broker):
    outbox.add(0, 1)
    outbox.down = True
    relay = make_relay(outbox, broker, owned=(0,), idle_poll=0.001, retry_backoff=0.001)
    stop, thread = run_in_thread(relay)
    wait_for(lambda: relay.failures >= 3)
    outbox.down = False
    wait_for(lambda: outbox.pending(0) == [])
    stop.set()
    thread.join(5)
    assert broker.published == [1] and relay.failures == 0


def test_between_sweeps_only_the_nudged_buckets_are_read(outbox, broker):
    clock = Clock()
    stop = threading.Event()
    nudges = [{1}, {7}, set()]  # 7: not ours

    class Wakeups:
        def wait(self, timeout):
            if not nudges:
                stop.set()
                return set()
            return nudges.pop(0)

        def close(self):
            pass

    relay = Relay("test", outbox, broker, leases=FixedBuckets([0, 1, 2]), wakeups=Wakeups(),
                  settings=RelaySettings(sweep_interval=60.0), clock=clock)
    relay.run(stop)
    assert outbox.claims == [0, 1, 2, 1]  # one sweep, then bucket 1 when nudged


def test_a_bucket_with_more_than_a_batch_goes_round_again_without_waiting(outbox, broker):
    outbox.add(0, *range(1, 8))
    waits = []
    stop = threading.Event()

    class Wakeups:
        def wait(self, timeout):
            waits.append(outbox.pending(0))
            stop.set()
            return set()

        def close(self):
            pass

    relay = Relay("test", outbox, broker, leases=FixedBuckets([0]), wakeups=Wakeups(),
                  settings=RelaySettings(batch=3))
    relay.run(stop)
    assert broker.published == list(range(1, 8)) and waits == [[]]


def test_closing_flushes_the_producer_and_gives_the_leases_up(outbox, broker):
    leases = FakeLeases([0])
    Relay("test", outbox, broker, leases=leases).close()
    assert broker.closed and leases.released


# -------------------------------------------------------------------- pruning


def test_pruning_runs_every_interval_and_again_at_once_after_a_full_batch(outbox, broker):
    clock = Clock()
    relay = Relay("test", outbox, broker,
                  settings=RelaySettings(prune_interval=60.0, prune_batch=100), clock=clock)
    outbox.pruned = [100, 40, 5]
    relay.prune()  # a full batch: more is due
    relay.prune()  # 40: done until the next interval
    relay.prune()
    assert outbox.prunes == [100, 100]
    clock.now += 60
    relay.prune()
    assert outbox.prunes == [100, 100, 100]


def test_a_failed_prune_neither_stops_publishing_nor_is_retried_at_once(outbox, broker, caplog):
    clock = Clock()
    outbox.down = True
    relay = Relay("test", outbox, broker, clock=clock)
    with caplog.at_level(logging.WARNING, logger="murmur.outbox"):
        relay.prune()
        relay.prune()
    assert len(outbox.prunes) == 1 and "cannot prune" in caplog.records[0].getMessage()
    outbox.down = False
    outbox.add(0, 1)
    assert relay.run_once() == (1, True)


# ---------------------------------------------------------------- Kafka publisher


class FakeFuture:
    def __init__(self, ok: bool | None | BaseException) -> None:
        self.is_done = ok is not None  # None: never answered
        self._ok = ok is True
        failed = isinstance(ok, BaseException) or ok is False
        # False: the partition's leader moved (an outage); an exception: that answer.
        self.exception = ((ok if isinstance(ok, BaseException)
                           else kafka_errors.NotLeaderForPartitionError("broker said no"))
                          if failed else None)

    def succeeded(self):
        return self._ok


class FakeProducer:
    def __init__(self, answers=()) -> None:
        self.sent: list[tuple] = []
        # Per send: True acked, False failed (leader moved), an exception: failed with it,
        # None: no answer.
        self.answers = list(answers)
        self.closed = False

    def send(self, topic, key, value, headers):
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, type):  # raised by send itself (e.g. a record too large)
            raise answer("raised by send")
        self.sent.append((topic, key, value, headers))
        return FakeFuture(answer)

    def flush(self, timeout):
        pass

    def close(self, timeout=None):
        self.closed = True


class FakeSpan:
    def __init__(self, headers) -> None:
        self.parent_headers, self.ended, self.error = dict(headers), False, None

    def end(self):
        self.ended = True


@pytest.fixture
def spans(monkeypatch):
    """Every producer span started, with the row headers it continued."""
    started: list[FakeSpan] = []

    def start(topic, key, headers):
        span = FakeSpan(headers)
        started.append(span)
        return span, {**headers, "traceparent": f"00-{len(started):032x}-{len(started):016x}-01"}

    def record_error(span, error):
        span.error = error

    monkeypatch.setattr(outbox_kafka.tracing, "start_producer_span", start)
    monkeypatch.setattr(outbox_kafka.tracing, "record_error", record_error)
    return started


def publisher_of(*producers):
    made = list(producers)
    return outbox_kafka.KafkaPublisher(lambda: made.pop(0), flush_timeout=1.0), made


def test_each_message_is_sent_in_order_under_a_span_continuing_its_trace(spans):
    producer = FakeProducer()
    publisher, _ = publisher_of(producer)
    assert publisher.publish([message(0, 1, key="10"), message(0, 2, key="11")]) == 2
    assert [(s[0], s[1], s[2]) for s in producer.sent] == [
        (TOPIC, b"10", b'{"n":1}'), (TOPIC, b"11", b'{"n":2}')]
    assert [s.parent_headers for s in spans] == [{"request_id": "r1"}, {"request_id": "r2"}]
    # The record carries the producer span's context (the consumer becomes its child).
    assert producer.sent[0][3] == [("request_id", b"r1"),
                                   ("traceparent", f"00-{1:032x}-{1:016x}-01".encode())]
    assert all(s.ended and s.error is None for s in spans)


def test_a_partial_acknowledgement_keeps_the_producer_and_names_the_acked_prefix(spans):
    producer = FakeProducer(answers=[True, False, True])
    publisher, _ = publisher_of(producer)
    with pytest.raises(PublishFailed) as failed:
        publisher.publish([message(0, i) for i in (1, 2, 3)])
    assert failed.value.acked == 1  # the third was acked, but after a failed one
    assert "NotLeaderForPartitionError: broker said no" in str(failed.value)
    assert failed.value.outage
    assert [s.error is not None for s in spans] == [False, True, True]
    assert all(s.ended for s in spans) and not producer.closed
    assert publisher.publish([message(0, 4)]) == 1  # the same producer


def test_a_producer_that_got_nothing_acknowledged_is_discarded(spans):
    stuck, fresh = FakeProducer(answers=[None, None]), FakeProducer()
    publisher, made = publisher_of(stuck, fresh)
    with pytest.raises(PublishFailed) as failed:
        publisher.publish([message(0, 1), message(0, 2)])
    assert failed.value.acked == 0 and stuck.closed
    assert publisher.publish([message(0, 1)]) == 1
    assert fresh.sent and made == []


def test_an_unreachable_broker_fails_the_batch_and_a_later_one_connects(spans):
    calls = []

    def make():
        calls.append(1)
        if len(calls) == 1:
            raise kafka_errors.KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:9")
        return FakeProducer()

    publisher = outbox_kafka.KafkaPublisher(make, flush_timeout=1.0)
    with pytest.raises(PublishFailed, match="Unable to bootstrap") as failed:
        publisher.publish([message(0, 1)])
    assert failed.value.outage
    assert publisher.publish([message(0, 1)]) == 1 and len(calls) == 2


def test_a_flush_timeout_counts_only_what_was_acknowledged_in_time(spans):
    class SlowProducer(FakeProducer):
        def flush(self, timeout):
            raise kafka_errors.KafkaTimeoutError("flush timed out")

    publisher, _ = publisher_of(SlowProducer(answers=[True, None]))
    with pytest.raises(PublishFailed, match="flush timed out") as failed:
        publisher.publish([message(0, 1), message(0, 2)])
    assert failed.value.acked == 1 and failed.value.outage


@pytest.mark.parametrize("answers,outage", [
    ([kafka_errors.NotEnoughReplicasError()], True),
    ([kafka_errors.RequestTimedOutError()], True),
    ([None], True),  # no answer in time
    ([kafka_errors.MessageSizeTooLargeError], False),  # raised by send
    ([kafka_errors.MessageSizeTooLargeError()], False),  # the broker's answer
    ([kafka_errors.TopicAuthorizationFailedError()], False),
], ids=["not-enough-replicas", "request-timed-out", "no-answer", "too-large-at-send",
        "too-large-from-broker", "not-authorised"])
def test_a_failed_batch_says_whether_kafka_was_away_or_refused_it(spans, answers, outage):
    publisher, _ = publisher_of(FakeProducer(answers=answers))
    with pytest.raises(PublishFailed) as failed:
        publisher.publish([message(0, 1)])
    assert failed.value.acked == 0 and failed.value.outage is outage


def test_the_record_that_stopped_the_batch_names_the_failure_not_a_later_timeout(spans):
    class SlowProducer(FakeProducer):
        def flush(self, timeout):
            raise kafka_errors.KafkaTimeoutError("flush timed out")

    refusal = kafka_errors.MessageSizeTooLargeError("record too large")
    publisher, _ = publisher_of(SlowProducer(answers=[True, refusal, None]))
    with pytest.raises(PublishFailed, match="record too large") as failed:
        publisher.publish([message(0, 1), message(0, 2), message(0, 3)])
    assert failed.value.acked == 1 and not failed.value.outage


@pytest.mark.parametrize("error", [kafka_errors.KafkaConfigurationError("bad option"),
                                   TypeError("a bug")])
def test_a_producer_that_cannot_be_made_for_a_reason_other_than_kafka_is_no_outage(spans,
                                                                                   error):
    def make():
        raise error

    with pytest.raises(PublishFailed) as failed:
        outbox_kafka.KafkaPublisher(make, flush_timeout=1.0).publish([message(0, 1)])
    assert not failed.value.outage and type(error).__name__ in str(failed.value)


# -------------------------------------------------------------------- the process


@pytest.fixture
def signal_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_process_stops_on_a_signal_and_closes_everything_in_order(monkeypatch, signum,
                                                                     signal_handlers):
    closed: list[str] = []

    class Probes:
        def stop(self):
            closed.append("probes")

    class SignalledRelay:
        def run(self, stop):
            signal.raise_signal(signum)
            assert stop.wait(5), "the signal did not stop the relay"

        def close(self):
            closed.append("relay")

    served = []
    monkeypatch.setattr(outbox_process.logs, "configure", lambda process: None)
    monkeypatch.setattr(outbox_process.tracing, "setup", lambda process: None)
    monkeypatch.setattr(outbox_process.tracing, "shutdown", lambda: closed.append("tracing"))
    monkeypatch.setattr(outbox_process, "serve_probes",
                        lambda *args: served.append(args) or Probes())
    service = Service("test-relay", None, SignalledRelay(),
                      closers=[lambda: closed.append("store")])
    outbox_process.run("users-relay", lambda: service)
    assert served[0][0] == "users-relay"
    assert closed == ["probes", "relay", "store", "tracing"]

"""The consumer loop: commits only what is done, rewinds and pauses on outages."""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka.structs import TopicPartition

from common import logs, resilience
from fanout.entrypoints.worker import Worker
from fanout.service_layer.records import Outcome

TP0 = TopicPartition("test.tweets.v1", 0)
TP1 = TopicPartition("test.tweets.v1", 1)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes = b""
    key: bytes | None = None
    headers: list = field(default_factory=list)


class FakeConsumer:
    """Serves prepared poll results and records what the worker asks of it."""

    def __init__(self, *batches: dict) -> None:
        self.batches = list(batches)
        self.commits, self.seeks, self.paused, self.resumed = [], [], set(), []

    def poll(self, timeout_ms, max_records):
        return self.batches.pop(0) if self.batches else {}

    def commit(self, offsets):
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    def pause(self, *tps):
        self.paused.update(tps)

    def resume(self, *tps):
        self.resumed.extend(tps)
        self.paused.difference_update(tps)


class ScriptedProcessor:
    """Returns RETRY_LATER for the offsets listed in `failing` (once each), else PROCESSED."""

    def __init__(self, failing=()) -> None:
        self.failing, self.seen = set(failing), []

    def process(self, record):
        self.seen.append((record.partition, record.offset))
        if (record.partition, record.offset) in self.failing:
            self.failing.discard((record.partition, record.offset))
            return Outcome.RETRY_LATER
        return Outcome.PROCESSED


def records(tp, *offsets):
    return [Record(tp.topic, tp.partition, o) for o in offsets]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self):
        return self.now


def test_offsets_after_the_processed_records_are_committed():
    consumer = FakeConsumer({TP0: records(TP0, 5, 6, 7), TP1: records(TP1, 3)})
    Worker(consumer, ScriptedProcessor(), ["t"]).run_once()
    assert consumer.commits == [{TP0: 8, TP1: 4}]


def test_a_transient_failure_rewinds_and_pauses_the_partition_without_committing_it():
    consumer = FakeConsumer({TP0: records(TP0, 5, 6, 7), TP1: records(TP1, 3)})
    processor = ScriptedProcessor(failing={(0, 6)})
    Worker(consumer, processor, ["t"], clock=Clock()).run_once()
    assert consumer.commits == [{TP0: 6, TP1: 4}]  # 5 is done; 6 and 7 are not
    assert consumer.seeks == [(TP0, 6)]
    assert consumer.paused == {TP0}
    assert (0, 7) not in processor.seen


def test_a_paused_partition_resumes_after_its_backoff():
    clock = Clock()
    consumer = FakeConsumer({TP0: records(TP0, 5)}, {}, {TP0: records(TP0, 5)})
    worker = Worker(consumer, ScriptedProcessor(failing={(0, 5)}), ["t"], clock=clock,
                    backoff_initial=1.0)
    worker.run_once()
    worker.run_once()
    assert consumer.resumed == []  # still backing off
    clock.now = 1.5
    worker.run_once()
    assert consumer.resumed == [TP0]
    assert consumer.commits[-1] == {TP0: 6}


def test_the_backoff_grows_while_the_dependency_stays_down():
    clock = Clock()
    consumer = FakeConsumer({TP0: records(TP0, 5)})
    worker = Worker(consumer, ScriptedProcessor(failing={(0, 5)}), ["t"], clock=clock,
                    backoff_initial=1.0, backoff_max=8.0)
    delays = []
    for _ in range(6):
        worker._process_partition(TP0, records(TP0, 5))
        worker.processor.failing.add((0, 5))
        delays.append(worker._backoff[TP0])
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_revoked_partitions_are_committed_before_they_move():
    consumer = FakeConsumer()
    worker = Worker(consumer, ScriptedProcessor(), ["t"])
    worker._process_partition(TP0, records(TP0, 9))
    worker._process_partition(TP1, records(TP1, 2))
    worker._on_revoked([TP0])
    assert consumer.commits == [{TP0: 10}]


def test_stop_finishes_the_batch_and_commits():
    consumer = FakeConsumer({TP0: records(TP0, 1, 2)})
    worker = Worker(consumer, ScriptedProcessor(), ["t"])
    original_poll = consumer.poll

    def poll_then_stop(**kwargs):
        worker.stop()
        return original_poll(**kwargs)

    consumer.poll = poll_then_stop
    worker.run()
    assert consumer.commits == [{TP0: 3}]


def test_partitions_of_one_poll_are_processed_in_parallel_each_in_order():
    import threading

    both_started = threading.Barrier(2, timeout=5)

    class SlowFirstRecord(ScriptedProcessor):
        def process(self, record):
            if record.offset == 1:
                both_started.wait()  # only passes if the two partitions run at the same time
            return super().process(record)

    consumer = FakeConsumer({TP0: records(TP0, 1, 2, 3), TP1: records(TP1, 1, 2)})
    processor = SlowFirstRecord(failing={(1, 2)})
    worker = Worker(consumer, processor, ["t"], concurrency=2)
    worker.run_once()
    assert [o for p, o in processor.seen if p == 0] == [1, 2, 3]
    assert [o for p, o in processor.seen if p == 1] == [1, 2]
    assert consumer.commits == [{TP0: 4, TP1: 2}]  # TP1 stops before the record to retry
    assert consumer.seeks == [(TP1, 2)] and TP1 in consumer.paused


class Observing(ScriptedProcessor):
    """Notes the deadline and the request id each record is processed under."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.request_ids = [], []

    def process(self, record):
        self.left.append(resilience.remaining())
        self.request_ids.append(logs.request_id_var.get())
        return super().process(record)


def test_each_record_is_processed_under_its_own_deadline_and_request_id():
    consumer = FakeConsumer({TP0: [Record(TP0.topic, 0, 5, headers=[("request_id", b"r-1")]),
                                   Record(TP0.topic, 0, 6)]})
    processor = Observing()
    Worker(consumer, processor, ["t"], record_budget=2.0).run_once()
    assert all(left is not None and 1.5 < left <= 2.0 for left in processor.left)
    assert processor.request_ids == ["r-1", ""]
    assert resilience.remaining() is None  # nothing outlives the record


def test_without_a_budget_a_record_has_no_deadline():
    consumer = FakeConsumer({TP0: records(TP0, 5)})
    processor = Observing()
    Worker(consumer, processor, ["t"]).run_once()
    assert processor.left == [None]


def test_bootstrap_returns_the_shared_service_shape_and_takes_overrides_by_name():
    import pytest

    from common import config as common_config
    from common.service import Service
    from fanout.bootstrap import bootstrap
    from fanout.config import FanoutConfig
    from fanout.entrypoints.worker import worker_for

    cfg = FanoutConfig(stores=common_config.stores(), users_url="http://127.0.0.1:9",
                       timeline_url="http://127.0.0.1:9")
    fakes = {"followers": object(), "home_timelines": object(), "tweets": object(),
             "dead_letters": object()}
    service = bootstrap(cfg, **fakes)
    assert isinstance(service, Service) and service.name == "fanout"
    assert {name: getattr(service.ports, name) for name in fakes} == fakes
    assert service.closers == [] and service.checks == {}  # it made nothing to close
    worker = worker_for(service, FakeConsumer(), poll_timeout_ms=1, concurrency=1)
    assert worker.processor.ports is service.ports
    assert worker.record_budget == cfg.record_budget
    with pytest.raises(TypeError, match="timelines"):
        bootstrap(cfg, timelines=object())


class FailingProcessor(ScriptedProcessor):
    """Fails (not the record's fault) at the offsets in `failing` until they are removed."""

    def __init__(self, failing=()) -> None:
        super().__init__(failing)
        self.failures = {}

    def process(self, record):
        self.seen.append((record.partition, record.offset))
        if (record.partition, record.offset) in self.failing:
            self.failures[(record.topic, record.partition)] = "RuntimeError: a bug"
            return Outcome.FAILED
        self.failures.pop((record.topic, record.partition), None)
        return Outcome.PROCESSED


def test_a_failing_record_holds_its_partition_and_readiness_names_it_until_it_passes():
    import pytest

    from fanout import metrics

    clock = Clock()
    batch = {TP0: records(TP0, 5, 6), TP1: records(TP1, 3)}
    consumer = FakeConsumer(batch, {}, {TP0: records(TP0, 6)}, {}, {TP0: records(TP0, 6)})
    processor = FailingProcessor(failing={(0, 6)})
    worker = Worker(consumer, processor, ["t"], clock=clock, backoff_initial=1.0)
    worker.run_once()
    assert consumer.commits == [{TP0: 6, TP1: 4}]  # never past the failing record
    assert consumer.seeks == [(TP0, 6)] and consumer.paused == {TP0}
    with pytest.raises(RuntimeError, match=r"test.tweets.v1\[0\]@6 held for 0s: "
                                           r"RuntimeError: a bug"):
        worker.failing()
    clock.now = 1.5
    worker.run_once()  # resumes, fails again: still held, for longer
    worker.run_once()
    held = metrics.HELD_SECONDS.labels(TP0.topic, "0")._value.get()
    assert held == 1.5
    with pytest.raises(RuntimeError, match="held for 2s"):
        worker.failing()
    processor.failing.clear()  # the deploy is fixed
    clock.now = 10.0
    worker.run_once()
    worker.run_once()
    assert consumer.commits[-1] == {TP0: 7}
    worker.failing()  # ready again
    assert metrics.HELD_SECONDS.labels(TP0.topic, "0")._value.get() == 0


def test_an_outage_holds_the_partition_without_failing_readiness():
    consumer = FakeConsumer({TP0: records(TP0, 5)})
    worker = Worker(consumer, ScriptedProcessor(failing={(0, 5)}), ["t"], clock=Clock())
    worker.run_once()
    assert TP0 in worker.held and consumer.commits == []
    worker.failing()  # the dependency checks say what is down


def test_a_partition_held_when_the_group_rebalances_is_tried_again_once_assigned():
    """kafka-python keeps a re-assigned partition paused; the worker forgot it was."""
    consumer = FakeConsumer({TP0: records(TP0, 5)})
    worker = Worker(consumer, ScriptedProcessor(failing={(0, 5)}), ["t"], clock=Clock())
    worker.run_once()
    assert consumer.paused == {TP0}
    worker._on_revoked([TP0])
    worker._on_assigned([TP0])
    assert consumer.paused == set() and TP0 not in worker.held

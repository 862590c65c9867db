"""`python -m fanout.entrypoints.worker`: the Kafka consumer loop, plus /healthz, /readyz
and /metrics.

At-least-once: offsets are committed only for records whose timeline writes are done
(after every poll, and for revoked partitions before they move). A record whose dependency
is down, or whose handling failed for any reason but the record's own (a bug, a
dependency answering what was not agreed), is not skipped: its partition is held, rewound
to it and paused for a growing, capped backoff, while the loop keeps polling (so the
group keeps the member) and other partitions go on. A partition held by a failure makes
/readyz fail and says which record; `murmur_fanout_held_seconds` says for how long, and
the consumer lag grows behind it.

Each record is processed as a request is served: with the request id of the post that
caused it, in a span continuing the producer's trace, and under a deadline of its own
(`record_budget`) that bounds every call it makes and travels on in `Murmur-Deadline`.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from common import logs, resilience, tracing
from common.service import Service
from common.web import ProbeServer

from fanout import metrics
from fanout.adapters import kafka as kafka_clients
from fanout.adapters.kafka import RevocationListener
from fanout.bootstrap import bootstrap, policy
from fanout.config import FanoutConfig
from fanout.entrypoints.lag import LagMonitor
from fanout.service_layer.ports import Message, Ports
from fanout.service_layer.records import Outcome, RecordProcessor

log = logging.getLogger("murmur.fanout")


class Worker:
    """Polls, processes record by record, commits what is done."""

    def __init__(self, consumer: Any, processor: RecordProcessor, topics: Iterable[str], *,
                 poll_timeout_ms: int = 500, max_records: int = 50,
                 backoff_initial: float = 0.2, backoff_max: float = 10.0,
                 concurrency: int = 1, record_budget: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer, self.processor, self.topics = consumer, processor, tuple(topics)
        self.record_budget = record_budget
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.backoff_initial, self.backoff_max, self.clock = backoff_initial, backoff_max, clock
        self._next_offsets: dict[TopicPartition, int] = {}  # processed, not yet committed
        self._resume_at: dict[TopicPartition, float] = {}  # paused after a transient failure
        self._backoff: dict[TopicPartition, float] = {}
        # Partitions held at a record: since when (clock), at which offset, and why.
        self.held: dict[TopicPartition, tuple[float, int, Outcome]] = {}
        self._stop = threading.Event()
        self.last_poll: float | None = None
        # Partitions of one poll are processed in parallel (each in order): a record's
        # latency is mostly waiting on users and Redis, so one-at-a-time leaves the CPU idle.
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="partition") \
            if concurrency > 1 else None

    def subscribe(self) -> None:
        """Join the group on the worker's topics."""
        for topic in self.topics:
            # Fetch the topics' metadata first: a member that joins without it may be
            # assigned no partitions until the next metadata refresh, minutes later.
            self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe(topics=list(self.topics),
                                listener=RevocationListener(self._on_revoked, self._on_assigned))

    def run(self) -> None:
        """Poll until `stop()`; the batch in hand is finished and committed before returning."""
        log.info("consuming %s", ", ".join(self.topics))
        while not self._stop.is_set():
            self.run_once()
        self.commit()
        if self._pool is not None:
            self._pool.shutdown()
        log.info("stopped consuming")

    def run_once(self) -> None:
        """One poll, its records processed, their offsets committed."""
        self._resume_due()
        batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        self.last_poll = self.clock()
        if self._pool is None or len(batch) < 2:
            results = [self._run_partition(tp, records) for tp, records in batch.items()]
        else:
            results = list(self._pool.map(lambda item: self._run_partition(*item),
                                          batch.items()))
        for result in results:
            self._apply(*result)
        self.commit()

    def stop(self) -> None:
        """Ask the loop to finish its batch and return."""
        self._stop.set()

    def _process_partition(self, tp: TopicPartition, records: list) -> None:
        self._apply(*self._run_partition(tp, records))

    def _apply(self, tp: TopicPartition, done: int | None, retry_at: int | None,
               why: Outcome = Outcome.RETRY_LATER) -> None:
        # The consumer is not thread-safe: offsets, seeks and pauses happen on the loop thread.
        if done is not None:
            self._next_offsets[tp] = done
            self._backoff.pop(tp, None)
            self._release(tp)
        if retry_at is not None:
            self._hold(tp, retry_at, why)
            self._retry_later(tp, retry_at)

    def _run_partition(self, tp: TopicPartition, records: list
                       ) -> tuple[TopicPartition, int | None, int | None, Outcome]:
        """Process one partition's records in order: (tp, next offset done, offset to retry,
        why it is retried)."""
        started = time.perf_counter()
        done = retry_at = None
        why = Outcome.PROCESSED
        for record in records:
            outcome = self.process(record)
            if outcome.holds:
                retry_at, why = record.offset, outcome
                break
            done = record.offset + 1
        metrics.BATCH_DURATION.labels(tp.topic).observe(time.perf_counter() - started)
        return tp, done, retry_at, why

    def _hold(self, tp: TopicPartition, offset: int, why: Outcome) -> None:
        since, at, _ = self.held.get(tp, (self.clock(), offset, why))
        if at != offset:
            since = self.clock()
        self.held[tp] = (since, offset, why)
        metrics.HELD_SECONDS.labels(tp.topic, str(tp.partition)).set(self.clock() - since)

    def _release(self, tp: TopicPartition) -> None:
        if self.held.pop(tp, None) is not None:
            metrics.HELD_SECONDS.labels(tp.topic, str(tp.partition)).set(0)

    def failing(self) -> None:
        """Readiness: raise, naming the records, while a failure (not an outage, which
        the dependency checks show) holds a partition."""
        failures = getattr(self.processor, "failures", {})
        stuck = [f"{tp.topic}[{tp.partition}]@{offset} held for {self.clock() - since:.0f}s: "
                 f"{failures.get((tp.topic, tp.partition), why.value)}"
                 for tp, (since, offset, why) in list(self.held.items())
                 if why is Outcome.FAILED]
        if stuck:
            raise RuntimeError("; ".join(sorted(stuck)))

    def process(self, record: Message) -> Outcome:
        """Process one record as a request: its request id, its span, its deadline."""
        request_id = logs.request_id_var.set(_header(record, "request_id"))
        try:
            # The span continues the producer's trace from the record headers, so the
            # calls to users and the Redis writes below nest under the post that caused them.
            with tracing.consumer_span(record.topic, record.partition, record.offset,
                                       record.key, record.headers) as span:
                with resilience.deadline(self.record_budget):
                    outcome = self.processor.process(record)
                span.set_attribute("murmur.outcome", outcome.value)
                if outcome is not Outcome.PROCESSED:
                    tracing.record_error(span, outcome.value)
                return outcome
        finally:
            logs.request_id_var.reset(request_id)

    def _retry_later(self, tp: TopicPartition, offset: int) -> None:
        # Rewind so the same record comes back, and pause so it does not come back at once.
        delay = min(self.backoff_max, self._backoff.get(tp, self.backoff_initial / 2) * 2)
        self._backoff[tp] = delay
        self.consumer.seek(tp, offset)
        self.consumer.pause(tp)
        self._resume_at[tp] = self.clock() + delay * random.uniform(0.5, 1.0)
        log.info("paused %s[%d] at offset %d for %.1fs", tp.topic, tp.partition, offset, delay)

    def _resume_due(self) -> None:
        now = self.clock()
        due = [tp for tp, at in self._resume_at.items() if at <= now]
        for tp in due:
            del self._resume_at[tp]
        if due:
            self.consumer.resume(*due)

    def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit the next offset of every processed partition (or of `partitions`)."""
        wanted = set(partitions) if partitions is not None else set(self._next_offsets)
        offsets = {tp: OffsetAndMetadata(off, "", -1)
                   for tp, off in self._next_offsets.items() if tp in wanted}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except KafkaError as exc:
            # Not fatal: the records come again after a rebalance or restart, and every
            # write is idempotent. Offsets of partitions still held are retried next time.
            metrics.COMMITS.labels("failed").inc()
            log.warning("offset commit failed: %s: %s", type(exc).__name__, exc)
            return
        metrics.COMMITS.labels("ok").inc()
        for tp, meta in offsets.items():
            if self._next_offsets.get(tp) == meta.offset:
                del self._next_offsets[tp]

    def _on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = list(revoked)
        self.commit(revoked)
        for tp in revoked:
            self._next_offsets.pop(tp, None)
            self._resume_at.pop(tp, None)
            self._backoff.pop(tp, None)
            self._release(tp)
        if revoked:
            log.info("partitions revoked: %s", _names(revoked))

    def _on_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        # kafka-python keeps the paused flag of a partition assigned again, but the hold's
        # resume time went with the revocation: without this, a partition held when the
        # group rebalanced would stay paused for good. Its record is simply tried again.
        if assigned:
            self.consumer.resume(*assigned)
        # Each partition's hold gauge exists from its assignment on (at 0), so a dashboard
        # reads "nothing held" rather than no data.
        for tp in assigned:
            if tp not in self.held:
                metrics.HELD_SECONDS.labels(tp.topic, str(tp.partition)).set(0)
        log.info("partitions assigned: %s", _names(assigned))


def _header(message: Message, name: str) -> str:
    for key, value in message.headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)) or "none"


def clear_multiprocess_dir() -> None:
    """Drop metric files of an earlier run of this process (it is the folder's only writer)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def worker_for(service: Service[FanoutConfig, Ports], consumer: Any, *,
               sleep: Callable[[float], None] | None = None, **loop: Any) -> Worker:
    """The consumer loop of a wired fanout service over `consumer`; `loop` overrides the
    loop settings taken from the service's config (e.g. poll_timeout_ms)."""
    cfg = service.config
    processor = RecordProcessor(service.ports, policy(cfg), attempts=cfg.handler_attempts,
                                backoff_max=cfg.handler_backoff_max,
                                **({"sleep": sleep} if sleep else {}))
    settings: dict[str, Any] = {
        "poll_timeout_ms": cfg.poll_timeout_ms, "max_records": cfg.max_poll_records,
        "backoff_initial": cfg.transient_backoff_initial,
        "backoff_max": cfg.transient_backoff_max, "concurrency": cfg.partition_concurrency,
        "record_budget": cfg.record_budget, **loop}
    return Worker(consumer, processor, cfg.topics, **settings)


def main() -> int:
    """Run the worker until SIGTERM/SIGINT; exit 0 after a clean shutdown."""
    from fanout import config

    cfg = config.load()
    logs.configure("fanout")
    clear_multiprocess_dir()
    service = bootstrap(cfg)
    consumer = kafka_clients.consumer(cfg)
    lag = LagMonitor(kafka_clients.offsets(cfg), interval=cfg.lag_interval)
    tracing.setup("fanout")  # after the clients it instruments were imported
    worker = worker_for(service, consumer)

    def loop_alive() -> None:
        if worker.last_poll is None or time.monotonic() - worker.last_poll > 60:
            raise RuntimeError("the consumer loop has not polled in the last 60 s")

    health = ProbeServer("fanout", cfg.bind_host, cfg.port,
                         {**service.checks, "consumer": loop_alive, "held": worker.failing})
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: worker.stop())
    health.start()
    lag.start()
    log.info("fanout worker up", extra={"fields": {"group": cfg.group_id, "port": cfg.port}})
    try:
        worker.subscribe()
        worker.run()
    finally:
        health.stop()
        lag.close()
        # Without committing: the worker has committed exactly what it processed.
        consumer.close(autocommit=False)
        service.close()
        tracing.shutdown()
        log.info("fanout worker closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m timeline.entrypoints.authors`: the author projection, users.v1 -> Cassandra.

Timeline keeps its own copy of what it shows about authors (id, username, display name),
so that reads never ask users, and of their celebrity status, so that a post is decided
fanned out or merged at read time without asking users either. This process consumes
users.v1 (UserRegistered, ProfileChanged, CelebrityStatusChanged; compacted, keyed by
user) in its own consumer group, from the oldest event for a new group, and upserts each
author; the newest profile version, and apart from it the newest status version, wins
(see `timeline.adapters.cassandra_authors`), so redeliveries and replays are harmless.

At-least-once: a partition's offset is committed only after its events are written. An
event that can never be applied (not JSON, not an envelope, a payload without a user id
or a version) is logged and skipped; a failed write (Cassandra down) rewinds the
partition to that event and the loop backs off, then tries again: nothing is skipped
because a store was away. SIGTERM/SIGINT: the batch in hand is finished and committed.
Serves /healthz, /readyz (Cassandra, and the loop polled lately) and /metrics.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from datetime import datetime
from typing import Any, Callable

from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from common import config as common_config
from common import events, logs, outages, rules
from common.web import serve_probes
from timeline import config as timeline_config
from timeline.adapters import kafka_users
from timeline.bootstrap import bootstrap_projection
from timeline.domain.commands import ProjectAuthor, ProjectCelebrityStatus
from timeline.domain.errors import DependencyUnavailable
from timeline.service_layer import handlers
from timeline.service_layer.ports import ProjectionPorts

log = logging.getLogger("murmur.timeline.authors")

HANDLED = (events.USER_REGISTERED, events.PROFILE_CHANGED, events.CELEBRITY_STATUS_CHANGED)
POLL_ALIVE = 60.0  # seconds without a poll after which the loop is not ready

EVENTS = Counter(
    "murmur_timeline_author_events_total",
    "users.v1 events seen by the author projection, by type and outcome "
    "(applied, ignored: a type it does not need, invalid: skipped as poison)",
    ["type", "outcome"])
PROJECTION_LAG = Histogram(
    "murmur_timeline_author_projection_lag_seconds",
    "From a users.v1 event's occurred_at to its write into the author projection",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600))
CONSUMER_LAG = Gauge(
    "murmur_timeline_author_consumer_lag",
    "users.v1 messages fetched by the broker but not yet applied: high watermark - position",
    ["partition"], multiprocess_mode="max")


class Retry(Exception):
    """An event that can be applied, but not now (its write failed)."""


def command_from(value: bytes | None) -> tuple[
        events.Event, ProjectAuthor | ProjectCelebrityStatus | None]:
    """The envelope of a users.v1 message and, for a profile or status event, what to apply.

    Raises `events.InvalidEvent` for a message that can never be applied.
    """
    event = events.Event.from_json(value)
    if event.type not in HANDLED:
        return event, None
    (user_id,) = event.require("user_id")
    parsed = rules.parse_id(user_id)
    if parsed is None:
        raise events.InvalidEvent(f"{event.type}: user_id {user_id!r} is not a user id")
    if event.type == events.CELEBRITY_STATUS_CHANGED:
        celebrity, version = event.require("celebrity", "version")
        return event, ProjectCelebrityStatus(parsed, celebrity, version)
    username, display_name, version = event.require("username", "display_name", "version")
    return event, ProjectAuthor(parsed, username, display_name, version)


def age_seconds(occurred_at: str, now: float) -> float | None:
    """Seconds since an envelope's occurred_at (None if it cannot be read)."""
    try:
        instant = datetime.fromisoformat(occurred_at)
    except ValueError:
        return None
    return max(0.0, now - instant.timestamp()) if instant.tzinfo else None


class Projector:
    """Polls users.v1, applies each event in order per partition, commits what is done."""

    def __init__(self, consumer: Any, ports: ProjectionPorts, topic: str, *,
                 poll_timeout_ms: int = 500, max_records: int = 500,
                 backoff_initial: float = 0.2, backoff_max: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.consumer, self.ports, self.topic = consumer, ports, topic
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.clock = clock
        self.backoff = 0.0
        self.last_poll: float | None = None  # time.monotonic() of the latest poll
        self.stop_event = threading.Event()

    def subscribe(self) -> None:
        """Join the group on users.v1."""
        # Metadata first: a member that joins without it may get no partition for minutes.
        self.consumer.partitions_for_topic(self.topic)
        self.consumer.subscribe(topics=[self.topic])

    def run(self) -> None:
        """Poll until `stop()`; the batch in hand is applied and committed first."""
        log.info("projecting authors from %s", self.topic)
        while not self.stop_event.is_set():
            try:
                caught_up = self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep consuming once the fault passes
                # Offsets are committed only after writes: whatever was in hand comes again.
                self.backoff = min(self.backoff_max, max(self.backoff_initial, self.backoff * 2))
                if outages.is_outage("kafka", exc):
                    # Kafka away (no broker, no leader, a timeout): it passes by itself.
                    log.warning("poll failed, Kafka unavailable, retrying in %.1fs: %s: %s",
                                self.backoff, type(exc).__name__, exc)
                else:
                    # Refused (not authorised, misconfigured) or a bug: retried all the same,
                    # but it will not pass by itself, so with its traceback.
                    log.error("poll failed, retrying in %.1fs: %s: %s", self.backoff,
                              type(exc).__name__, exc, exc_info=exc)
                caught_up = False
            if not caught_up and self.backoff:
                self.stop_event.wait(self.backoff)
        log.info("author projection stopped")

    def stop(self) -> None:
        """Ask the loop to finish its batch and return."""
        self.stop_event.set()

    def alive(self) -> None:
        """Readiness: raise unless the loop polled within the last minute."""
        if self.last_poll is None or time.monotonic() - self.last_poll > POLL_ALIVE:
            raise RuntimeError(f"the consumer loop has not polled in the last {POLL_ALIVE:.0f} s")

    def run_once(self) -> bool:
        """One poll: apply, commit; False if a partition was rewound to retry an event."""
        batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        self.last_poll = time.monotonic()
        done: dict[TopicPartition, int] = {}
        rewound = False
        for tp, records in batch.items():
            for record in records:
                try:
                    self.apply(record)
                except Retry:
                    # Back to this event: the next poll of the partition starts from it.
                    self.consumer.seek(tp, record.offset)
                    rewound = True
                    break
                done[tp] = record.offset + 1
        self.commit(done)
        self.export_lag()
        if rewound:
            self.backoff = min(self.backoff_max, max(self.backoff_initial, self.backoff * 2))
        else:
            self.backoff = 0.0
        return not rewound

    def apply(self, record: Any) -> None:
        """Apply one message; skip it if it can never be applied; Retry if not now."""
        try:
            event, command = command_from(record.value)
        except events.InvalidEvent as exc:
            self._skip(record, "unknown", exc)
            return
        if command is None:
            EVENTS.labels(event.type, "ignored").inc()
            return
        try:
            if isinstance(command, ProjectCelebrityStatus):
                handlers.project_celebrity_status(command, self.ports)
            else:
                handlers.project_author(command, self.ports)
        except rules.InvalidInput as exc:
            self._skip(record, event.type, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a store fault: the event is retried
            log.warning("author %d not written, retrying in a while: %s: %s",
                        command.user_id, type(exc).__name__, exc,
                        exc_info=not isinstance(exc, DependencyUnavailable))
            raise Retry(str(exc)) from exc
        EVENTS.labels(event.type, "applied").inc()
        age = age_seconds(event.occurred_at, self.clock())
        if age is not None:
            PROJECTION_LAG.observe(age)

    def _skip(self, record: Any, kind: str, exc: Exception) -> None:
        EVENTS.labels(kind, "invalid").inc()
        detail = getattr(exc, "errors", None) or str(exc)
        log.warning("skipped a users.v1 message that cannot be applied (%s[%d] offset %d): %s",
                    record.topic, record.partition, record.offset, detail)

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit the next offset of each partition; a failure only means a redelivery."""
        if not offsets:
            return
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)
                                  for tp, offset in offsets.items()})
        except outages.exceptions("kafka") as exc:
            # Kafka away, or the group rebalanced under us (not an outage): either way the
            # events come again after a restart or rebalance, and every write is idempotent.
            log.warning("offset commit failed%s: %s: %s",
                        ", Kafka unavailable" if outages.is_outage("kafka", exc) else "",
                        type(exc).__name__, exc)

    def export_lag(self) -> None:
        """Messages behind the broker's high watermark, per assigned partition."""
        try:
            for tp in self.consumer.assignment():
                highwater = self.consumer.highwater(tp)
                if highwater is not None:
                    lag = max(0, highwater - self.consumer.position(tp))
                    CONSUMER_LAG.labels(str(tp.partition)).set(lag)
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the loop
            log.debug("consumer lag not exported: %s", exc)


def main() -> int:
    """Run the projection until SIGTERM/SIGINT; exit 0 after a clean shutdown."""
    cfg = timeline_config.load()
    logs.configure("timeline-authors")
    service = bootstrap_projection(cfg)
    topic = kafka_users.users_topic(cfg.stores)
    consumer = kafka_users.consumer(cfg.stores, cfg.authors_group_id, "timeline-authors",
                                    cfg.kafka_timeout_ms)
    projector = Projector(consumer, service.ports, topic)

    def _stop(signum, _frame) -> None:
        log.info("signal %d received, stopping", signum)
        projector.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    probes = serve_probes("timeline-authors", common_config.bind_host(),
                          cfg.authors_probe_port, {**service.checks, "consumer": projector.alive})
    log.info("author projection started", extra={"fields": {
        "group": cfg.authors_group_id, "topic": topic, "port": cfg.authors_probe_port}})
    try:
        projector.subscribe()
        projector.run()
    finally:
        for close in ([probes.stop] if probes else []) + [
                lambda: consumer.close(autocommit=False), service.close]:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - close the rest regardless
                log.warning("error while closing: %s", exc)
        log.info("author projection closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The outbox relay: `python -m timeline.relay` publishes outbox rows to Kafka.

A tweet and its event are written in one logged batch; this process moves the event on.
Per bucket it reads pending rows in event order, publishes them (acks=all, key = author
id), waits for the broker's acknowledgements, and deletes only the acknowledged prefix.
A crash or a Kafka outage therefore delays events but never loses one; an event may be
published twice (a crash after the ack, before the delete), which consumers absorb because
every fan-out write is idempotent.

Ownership: each bucket is leased in Redis (SET NX with a TTL, renewed while the relay
lives), so two relays never publish the same rows side by side; if a relay dies, another
picks up its buckets when the lease runs out. Leases rather than "run exactly one relay":
a second replica then is a hot standby instead of a source of endless duplicates.

Latency: the timeline service publishes a wake-up on Redis pub/sub after each write, so
the relay usually reacts within a millisecond or two; a sweep of all owned buckets every
`relay_sweep_interval` catches whatever a lost wake-up missed.

Tombstones: deleted outbox rows leave tombstones that later scans must step over (and
that Cassandra drops only after gc_grace_seconds, see schema 0002). A relay scans a bucket
whole when it takes it over; once drained, only from a watermark 30 s in the past, and
once a minute from 10 min back, for a row whose batch landed unusually late.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable, Protocol, Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from common import config as common_config
from common import ids, logs, tracing
from common.metrics import OUTBOX_BACKLOG
from common.web import serve_probes
from timeline import config as timeline_config
from timeline.adapters import redis_store
from timeline.adapters.cassandra_store import CassandraOutbox, CassandraSession
from timeline.domain import OutboxMessage

log = logging.getLogger("murmur.timeline.relay")

LEASE_PREFIX = "timeline:outbox-lease"
LATE_WINDOW_MS = 30_000  # longest a logged batch may take to land after its id was issued
RESCAN_WINDOW_MS = 600_000  # how far back the periodic rescan looks
RESCAN_INTERVAL = 60.0
MAX_BACKOFF = 2.0

# For every bucket key: extend our own lease, or take a free one. One round trip for all.
_MAINTAIN_LEASES = """
local owned = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    owned[i] = 1
  elseif redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    owned[i] = 1
  else
    owned[i] = 0
  end
end
return owned
"""

_RELEASE_LEASES = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


class PublishFailed(Exception):
    """The broker did not acknowledge a message in time."""


class Outbox(Protocol):
    def pending(self, bucket: int, after: int, limit: int) -> list[OutboxMessage]: ...

    def remove(self, bucket: int, event_ids: Sequence[int]) -> None: ...


class Publisher(Protocol):
    def publish(self, events: Sequence[OutboxMessage]) -> int: ...


class Leases(Protocol):
    def maintain(self) -> list[int]: ...

    def release(self) -> None: ...


class KafkaPublisher:
    """Publishes events with acks=all; the producer is made on first use and remade on need."""

    def __init__(self, bootstrap_servers: str, timeout_ms: int, client_id: str) -> None:
        self.bootstrap_servers, self.timeout_ms = bootstrap_servers, timeout_ms
        self.client_id = client_id
        self._producer: KafkaProducer | None = None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap_servers, client_id=self.client_id,
                    acks="all", linger_ms=1, max_block_ms=self.timeout_ms,
                    bootstrap_timeout_ms=self.timeout_ms,
                    request_timeout_ms=self.timeout_ms,
                    delivery_timeout_ms=self.timeout_ms * 2,
                    max_in_flight_requests_per_connection=5)
            except KafkaError as exc:
                raise PublishFailed(f"cannot reach Kafka: {exc}") from exc
        return self._producer

    def publish(self, events: Sequence[OutboxMessage]) -> int:
        """Send events in order; returns how many, from the first, the broker acknowledged."""
        producer = self._connect()
        futures, spans = [], []
        try:
            for event in events:
                # Each event is published under a span continuing the trace of the request
                # that wrote it; the record carries that span's context to the consumer.
                span, headers = tracing.start_producer_span(event.topic, event.key,
                                                            event.headers)
                spans.append(span)
                futures.append(producer.send(
                    event.topic, key=event.key.encode(), value=event.payload,
                    headers=[(k, v.encode()) for k, v in sorted(headers.items())]))
        except KafkaError as exc:
            log.warning("kafka send failed after %d of %d: %s", len(futures), len(events), exc)
        acked = 0
        for future in futures:
            try:
                future.get(timeout=self.timeout_ms * 2 / 1000)
            except KafkaError as exc:
                log.warning("kafka did not acknowledge an event: %s", exc)
                break
            acked += 1
        _end_spans(spans, acked)
        if acked == 0 and events:
            # A producer that got nothing acknowledged may never recover (after a broker
            # restart it can keep waiting on metadata and sequence state of the old one,
            # found by the kafka-stopped chaos experiment): the next pass makes a new one.
            self._discard()
            raise PublishFailed("no event was acknowledged")
        return acked

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:  # noqa: BLE001 - it is being thrown away
                log.debug("closing a failed producer: %s", exc)

    def close(self) -> None:
        """Flush what is in flight and close the producer."""
        if self._producer is not None:
            self._producer.close(timeout=self.timeout_ms / 1000)
            self._producer = None


def _end_spans(spans: list, acked: int) -> None:
    for span in spans[:acked]:
        span.end()
    for span in spans[acked:]:
        tracing.record_error(span, "not acknowledged by the broker")
        span.end()


class RedisBucketLeases:
    """Leases on outbox buckets, held by one relay at a time."""

    def __init__(self, client, prefix: str, owner: str, buckets: int, ttl: int) -> None:
        self.client, self.owner, self.ttl = client, owner, ttl
        self.keys = [f"{prefix}:{b}" for b in range(buckets)]
        self._maintain = client.register_script(_MAINTAIN_LEASES)
        self._release = client.register_script(_RELEASE_LEASES)

    def maintain(self) -> list[int]:
        """Renew the leases we hold, take free ones; returns the buckets we own now."""
        flags = self._maintain(keys=self.keys, args=[self.owner, self.ttl * 1000])
        return [b for b, flag in enumerate(flags) if flag]

    def release(self) -> None:
        """Give our buckets up at once, so a standby takes over without waiting."""
        self._release(keys=self.keys, args=[self.owner])


def id_floor(unix_ms: int) -> int:
    """The smallest snowflake id issued at `unix_ms` or later."""
    return max(0, unix_ms - ids.MURMUR_EPOCH_MS) << (ids.WORKER_BITS + ids.SEQUENCE_BITS)


class Relay:
    """Moves outbox rows to Kafka, bucket by bucket, in event order."""

    def __init__(self, outbox: Outbox, publisher: Publisher, leases: Leases, batch: int = 500,
                 lease_renewal: float = 3.0, clock: Callable[[], float] = time.time) -> None:
        self.outbox, self.publisher, self.leases = outbox, publisher, leases
        self.batch, self.lease_renewal, self.clock = batch, lease_renewal, clock
        self.owned: list[int] = []
        self._floors: dict[int, int] = {}
        self._backlog: dict[int, int] = {}  # rows left pending at the last read, by bucket
        self._leases_renewed = float("-inf")
        self._rescan_at = self.clock()

    def renew_leases(self, force: bool = False) -> list[int]:
        """Keep our buckets and take free ones (at most every `lease_renewal` seconds)."""
        now = self.clock()
        if force or now - self._leases_renewed >= self.lease_renewal:
            owned = self.leases.maintain()
            for bucket in set(self.owned) - set(owned):
                self._floors.pop(bucket, None)
                self._set_backlog(bucket, None)
                log.info("lost the lease of outbox bucket %d", bucket)
            if set(owned) - set(self.owned):
                log.info("relaying outbox buckets %s", owned)
            self.owned, self._leases_renewed = owned, now
        return self.owned

    def relay_bucket(self, bucket: int) -> tuple[int, bool]:
        """Publish one batch of a bucket; returns (events published, bucket drained)."""
        events = self.outbox.pending(bucket, self._floors.get(bucket, 0), self.batch)
        if not events:
            self._set_backlog(bucket, 0)
            self._mark_drained(bucket)
            return 0, True
        try:
            acked = self.publisher.publish(events)
        except Exception:
            self._set_backlog(bucket, len(events))
            raise
        self._set_backlog(bucket, len(events) - acked)
        self.outbox.remove(bucket, [e.event_id for e in events[:acked]])
        drained = acked == len(events) and len(events) < self.batch
        if drained:
            self._mark_drained(bucket)
        return acked, drained

    def _set_backlog(self, bucket: int, pending: int | None) -> None:
        # A lower bound: one read sees at most `batch` rows of a bucket.
        if pending is None:
            self._backlog.pop(bucket, None)
        else:
            self._backlog[bucket] = pending
        OUTBOX_BACKLOG.labels("timeline").set(sum(self._backlog.values()))

    def _mark_drained(self, bucket: int) -> None:
        self._floors[bucket] = id_floor(int(self.clock() * 1000) - LATE_WINDOW_MS)

    def run_once(self, buckets: Sequence[int] | None = None) -> tuple[int, bool]:
        """One pass over owned buckets (all, or the ones named); (published, all drained)."""
        if self.clock() - self._rescan_at >= RESCAN_INTERVAL:
            floor = id_floor(int(self.clock() * 1000) - RESCAN_WINDOW_MS)
            self._floors = {b: min(f, floor) for b, f in self._floors.items()}
            self._rescan_at = self.clock()
        owned = self.renew_leases()
        targets = owned if buckets is None else [b for b in buckets if b in owned]
        published, drained = 0, True
        for bucket in targets:
            count, done = self.relay_bucket(bucket)
            published += count
            drained = drained and done
        return published, drained


class Wakeups:
    """Nudges from the timeline service on Redis pub/sub; a lost one only costs a sweep."""

    def __init__(self, client, channel: str) -> None:
        self.client, self.channel = client, channel
        self._pubsub = None

    def wait(self, timeout: float) -> set[int]:
        """Buckets nudged within `timeout` seconds (empty if none or if Redis is down)."""
        try:
            if self._pubsub is None:
                self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.channel)
            buckets: set[int] = set()
            message = self._pubsub.get_message(timeout=timeout)
            while message is not None:
                if message.get("type") == "message":
                    buckets.add(int(message["data"]))
                message = self._pubsub.get_message(timeout=0)
            return buckets
        except Exception as exc:  # noqa: BLE001 - the periodic sweep covers for Redis
            log.warning("wake-up channel unavailable: %s", exc)
            self.close()
            time.sleep(timeout)
            return set()

    def close(self) -> None:
        """Unsubscribe and drop the connection."""
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail
                pass
            self._pubsub = None


def serve(relay: Relay, wakeups: Wakeups, stop: threading.Event, idle_poll: float,
          sweep_interval: float) -> None:
    """Relay until `stop` is set, backing off while Kafka or a store is down."""
    backoff = 0.0
    last_sweep = float("-inf")
    nudged: set[int] = set()
    while not stop.is_set():
        try:
            sweep = time.monotonic() - last_sweep >= sweep_interval
            _, drained = relay.run_once(None if sweep else sorted(nudged))
            if sweep:
                last_sweep = time.monotonic()
            backoff = 0.0
        except Exception as exc:  # noqa: BLE001 - keep relaying once the fault passes
            backoff = min(MAX_BACKOFF, max(idle_poll, backoff * 2))
            log.warning("relay pass failed, retrying in %.1fs: %s: %s", backoff,
                        type(exc).__name__, exc)
            stop.wait(backoff)
            continue
        # A bucket with more rows than one batch goes round again at once.
        nudged = set() if drained else set(relay.owned)
        if drained:
            nudged = wakeups.wait(idle_poll)


def main() -> None:
    """Entry point of `python -m timeline.relay`; stops cleanly on SIGTERM or SIGINT."""
    logs.configure("timeline-relay")
    tracing.setup("timeline-relay")
    cfg = timeline_config.load()
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        log.info("signal %d received, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    owner = redis_store.owner_id(cfg.process_name)
    client = redis_store.connect(cfg.stores, max_connections=4)
    db = CassandraSession(cfg.stores, cfg.cassandra_timeout)
    publisher = KafkaPublisher(cfg.stores.kafka_bootstrap, cfg.kafka_timeout_ms, owner)
    leases = RedisBucketLeases(client, LEASE_PREFIX, owner,
                               cfg.outbox_buckets, cfg.relay_lease_ttl)
    relay = Relay(CassandraOutbox(db), publisher, leases, batch=cfg.relay_batch,
                  lease_renewal=cfg.relay_lease_ttl / 3)
    wakeups = Wakeups(client, cfg.wakeup_channel)
    probes = serve_probes("timeline-relay", common_config.bind_host(),
                          common_config.service_port("timeline-relay"))
    log.info("outbox relay started", extra={"fields": {"owner": owner,
                                                       "buckets": cfg.outbox_buckets}})
    try:
        serve(relay, wakeups, stop, cfg.relay_idle_poll, cfg.relay_sweep_interval)
    finally:
        closers = [wakeups.close, publisher.close, leases.release, db.shutdown, client.close,
                   tracing.shutdown]
        for close in ([probes.stop] if probes else []) + closers:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - close the rest regardless
                log.warning("error while closing: %s", exc)
        log.info("outbox relay stopped")


if __name__ == "__main__":
    main()

"""The follows outbox relay: `python -m users.relay`.

Publishes unpublished outbox rows to Kafka in id order and marks them published only
after the broker acknowledged them (acks=all), so an event is never lost: Kafka being
down, or the relay dying between the publish and the mark, only delays it (and in the
second case publishes it again; consumers are idempotent, delivery is at-least-once).

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so two relays never publish the same row
at the same time. Per-key order is only guaranteed with one relay running, because two
relays work on different batches concurrently; run more for availability, not for speed.

A trigger NOTIFYs `users_outbox` on every insert, so the relay wakes at once; it also
polls every `relay_poll_interval` seconds in case a notification is missed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
import time
from typing import Any, Callable

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from common import config as common_config
from common import logs, tracing
from common.metrics import OUTBOX_BACKLOG
from common.web import serve_probes
from users import config as users_config
from users.bootstrap import pg_pool

log = logging.getLogger("murmur.users.relay")

CHANNEL = "users_outbox"

_CLAIM = ("SELECT id, topic, key, payload, headers FROM outbox WHERE published_at IS NULL "
          "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED")
_MARK = "UPDATE outbox SET published_at = now() WHERE id = ANY(%s)"
_BACKLOG = "SELECT count(*) FROM outbox WHERE published_at IS NULL"  # partial index


def kafka_producer(cfg: users_config.UsersConfig):
    """A producer that waits for all in-sync replicas and gives up within bounded times."""
    from kafka import KafkaProducer  # imported here: no Kafka client before it is needed

    return KafkaProducer(
        bootstrap_servers=cfg.stores.kafka_bootstrap,
        client_id=cfg.process,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=cfg.kafka_request_timeout_ms,
        delivery_timeout_ms=cfg.kafka_delivery_timeout_ms,
        max_block_ms=cfg.kafka_max_block_ms,
        bootstrap_timeout_ms=cfg.kafka_max_block_ms,
    )


class OutboxRelay:
    """Moves outbox rows to Kafka, batch by batch."""

    def __init__(self, pool: ConnectionPool, producer_factory: Callable[[], Any], *,
                 listen_conninfo: str | None = None, batch_size: int = 500,
                 poll_interval: float = 0.1, retry_backoff: float = 1.0,
                 max_backoff: float = 5.0, flush_timeout: float = 15.0,
                 backlog_interval: float = 1.0) -> None:
        self.pool, self.producer_factory = pool, producer_factory
        self.listen_conninfo = listen_conninfo
        self.batch_size, self.poll_interval = batch_size, poll_interval
        self.retry_backoff, self.max_backoff = retry_backoff, max_backoff
        self.flush_timeout = flush_timeout
        self.backlog_interval = backlog_interval
        self._backlog_at = float("-inf")
        self._producer = None
        self._listener: psycopg.Connection | None = None
        self._failures = 0  # consecutive failed attempts

    # ------------------------------------------------------------------ one batch

    def publish_batch(self) -> tuple[int, int]:
        """Publish one batch of unpublished rows; returns (published, failed)."""
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(_CLAIM, (self.batch_size,)).fetchall()
            if not rows:
                return 0, 0
            published = self._send(rows)
            if published:
                conn.execute(_MARK, (published,))
            return len(published), len(rows) - len(published)

    def _send(self, rows: list[tuple]) -> list[int]:
        """Send rows in order; the ids the broker acknowledged."""
        futures, spans = [], []
        try:
            producer = self._producer or self.producer_factory()
            self._producer = producer
            for row_id, topic, key, payload, headers in rows:
                # Published under a span continuing the trace of the request that wrote
                # the row; the record carries that span's context to the consumer.
                span, headers = tracing.start_producer_span(topic, key, headers)
                spans.append(span)
                futures.append((row_id, producer.send(
                    topic,
                    key=key.encode(),
                    value=json.dumps(payload, separators=(",", ":")).encode(),
                    headers=[(name, value.encode()) for name, value in headers.items()],
                )))
            producer.flush(timeout=self.flush_timeout)
        except Exception as exc:  # noqa: BLE001 - any client failure: retry the batch later
            self._report_failure(f"{type(exc).__name__}: {exc}")
            self._reset_producer()
        acked = [row_id for row_id, future in futures if future.is_done and future.succeeded()]
        for span, (_, future) in zip(spans, futures):
            if not (future.is_done and future.succeeded()):
                tracing.record_error(span, "not acknowledged by the broker")
        for span in spans:
            span.end()
        if len(acked) < len(rows):
            errors = {repr(f.exception) for _, f in futures if f.is_done and f.failed()}
            if errors:
                self._report_failure(", ".join(sorted(errors)))
        return acked

    # ------------------------------------------------------------------- the loop

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set, waking on NOTIFY or every poll interval."""
        log.info("outbox relay started")
        while not stop.is_set():
            self._ensure_listening()
            self._refresh_backlog()
            try:
                published, failed = self.publish_batch()
            except (psycopg.Error, PoolTimeout) as exc:
                self._report_failure(f"postgres: {type(exc).__name__}: {exc}")
                published, failed = 0, 1
            if failed:
                self._failures += 1
                stop.wait(self._backoff())
                continue
            self._report_recovery()
            if published:
                log.debug("published %d outbox events", published)
            if published < self.batch_size:
                self._wait_for_work(stop)
        self.close()
        log.info("outbox relay stopped")

    def _ensure_listening(self) -> None:
        if self._listener is not None or self.listen_conninfo is None:
            return
        try:
            self._listener = psycopg.connect(self.listen_conninfo, autocommit=True)
            self._listener.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.debug("cannot LISTEN yet, polling instead: %s", exc)
            self._close_listener()

    def _wait_for_work(self, stop: threading.Event) -> None:
        if self._listener is None:
            stop.wait(self.poll_interval)
            return
        try:
            # Returns at the first notification, or after the poll interval without one.
            for _ in self._listener.notifies(timeout=self.poll_interval, stop_after=1):
                pass
        except psycopg.Error:
            self._close_listener()
            stop.wait(self.poll_interval)

    # ---------------------------------------------------------------- bookkeeping

    def _refresh_backlog(self) -> None:
        """Export how many rows wait to be published (at most every `backlog_interval`)."""
        now = time.monotonic()
        if now - self._backlog_at < self.backlog_interval:
            return
        self._backlog_at = now
        try:
            with self.pool.connection(timeout=1.0) as conn:
                (pending,) = conn.execute(_BACKLOG).fetchone()
        except (psycopg.Error, PoolTimeout):
            return  # the publish attempt reports Postgres being down
        OUTBOX_BACKLOG.labels("users").set(pending)

    def _backoff(self) -> float:
        # Exponential, capped low enough that publishing resumes within seconds of the
        # fault ending.
        return min(self.retry_backoff * 2 ** (self._failures - 1), self.max_backoff)

    def _report_failure(self, reason: str) -> None:
        # One warning when publishing starts failing, not one per retry.
        if not self._failures:
            log.warning("outbox relay cannot publish, will retry: %s", reason)

    def _report_recovery(self) -> None:
        if self._failures:
            log.info("outbox relay publishing again after %d failed attempts", self._failures)
        self._failures = 0

    def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=1)
            except Exception:  # noqa: BLE001 - a broken client is dropped either way
                pass

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close(self) -> None:
        """Flush and close the producer and the listening connection."""
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
        self._close_listener()


def main() -> None:
    """Run the relay until SIGTERM or SIGINT."""
    cfg = users_config.load()
    cfg = dataclasses.replace(cfg, pg_pool_min=1, pg_pool_max=2)
    logs.configure("users-relay")
    tracing.setup("users-relay")
    pool = pg_pool(cfg)
    relay = OutboxRelay(
        pool, lambda: kafka_producer(cfg),
        listen_conninfo=cfg.stores.pg_conninfo,
        batch_size=cfg.relay_batch_size,
        poll_interval=cfg.relay_poll_interval,
        retry_backoff=cfg.relay_retry_backoff,
        flush_timeout=cfg.kafka_delivery_timeout_ms / 1000 + 1,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    probes = serve_probes("users-relay", common_config.bind_host(),
                          common_config.service_port("users-relay"))
    try:
        relay.run(stop)
    finally:
        if probes is not None:
            probes.stop()
        pool.close()
        tracing.shutdown()


if __name__ == "__main__":
    main()

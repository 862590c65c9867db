"""The outbox relay's publisher: outbox messages to Kafka (`common.outbox.Publisher`).

Every message is sent with acks=all by an idempotent producer, under a PRODUCER span that
continues the trace stored in the message's headers (the request that wrote the row), and
the record carries that span's context on to the consumer. A batch is answered by how
many messages, from the first, the broker acknowledged, and whether what stopped it was
Kafka being away (`common.outages`' "kafka": it passes by itself) or Kafka refusing (a
record too large, a topic not authorised: it does not).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from common import outages, tracing
from common.outbox import OutboxMessage, PublishFailed

log = logging.getLogger("murmur.outbox")


def kafka_producer(bootstrap_servers: str, client_id: str, *, request_timeout_ms: int = 5000,
                   delivery_timeout_ms: int = 10_000, max_block_ms: int = 5000) -> Any:
    """A producer that waits for all in-sync replicas and gives up within bounded times.

    Idempotent: the broker drops the duplicates of its own retries, so a retried send
    neither doubles nor reorders a partition's records.
    """
    from kafka import KafkaProducer  # imported here: no Kafka client before it is needed

    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,
        linger_ms=2,
        request_timeout_ms=request_timeout_ms,
        delivery_timeout_ms=delivery_timeout_ms,
        max_block_ms=max_block_ms,
        bootstrap_timeout_ms=max_block_ms,
    )


class KafkaPublisher:
    """Publishes outbox messages; the producer is made on first use and remade on need."""

    def __init__(self, make_producer: Callable[[], Any], flush_timeout: float) -> None:
        self.make_producer, self.flush_timeout = make_producer, flush_timeout
        self._producer: Any = None

    @classmethod
    def to(cls, bootstrap_servers: str, client_id: str, *, request_timeout_ms: int = 5000,
           delivery_timeout_ms: int = 10_000, max_block_ms: int = 5000) -> "KafkaPublisher":
        """A publisher to a Kafka cluster (see `kafka_producer`)."""
        return cls(lambda: kafka_producer(bootstrap_servers, client_id,
                                          request_timeout_ms=request_timeout_ms,
                                          delivery_timeout_ms=delivery_timeout_ms,
                                          max_block_ms=max_block_ms),
                   flush_timeout=delivery_timeout_ms / 1000 + 1)

    def publish(self, messages: Sequence[OutboxMessage]) -> int:
        """Send `messages` in order and wait for the broker (see `Publisher.publish`)."""
        futures, spans = [], []
        caught: BaseException | None = None
        try:
            producer = self._producer = self._producer or self.make_producer()
            for message in messages:
                # Published under a span continuing the trace of the request that wrote the
                # message; the record carries that span's context on to the consumer.
                span, headers = tracing.start_producer_span(message.topic, message.key,
                                                            message.headers)
                spans.append(span)
                futures.append(producer.send(
                    message.topic, key=message.key.encode(), value=message.payload,
                    headers=[(name, value.encode()) for name, value in sorted(headers.items())]))
            producer.flush(timeout=self.flush_timeout)
        except Exception as exc:  # noqa: BLE001 - any client failure: the rest waits
            caught = exc
        acked, refused = 0, None  # refused: the error of the first failed record, if any
        for future in futures:
            if not (future.is_done and future.succeeded()):
                refused = future.exception if future.is_done else None
                break
            acked += 1
        for index, span in enumerate(spans):
            if index >= acked:
                tracing.record_error(span, "not acknowledged by the broker")
            span.end()
        if acked < len(messages):
            if acked == 0:
                # A producer that got nothing acknowledged may never recover (after a broker
                # restart it can keep waiting on the metadata and sequence state of the old
                # one): the next attempt makes a new one.
                self._discard()
            # What stopped the batch where it stopped: that record's error, else what the
            # client raised (a send or the flush), else nothing answered in time.
            error = refused or caught
            if error is None:  # no answer in time is Kafka being away
                raise PublishFailed("not acknowledged in time", acked, outage=True)
            # kafka-python's errors name their class in their text already.
            reason, name = str(error), type(error).__name__
            reason = reason if reason.startswith(name) else f"{name}: {reason}"
            raise PublishFailed(reason, acked, outage=outages.is_outage("kafka", error))
        return acked

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:  # noqa: BLE001 - it is being thrown away
                log.debug("closing a failed producer: %s", exc)

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.close(timeout=self.flush_timeout)

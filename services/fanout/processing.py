"""One Kafka record in, one outcome out: processed, dead-lettered, or retry later.

The difference between a poison message and a transient outage decides what happens to
the offset. A message that can never succeed (malformed, refused by a dependency with a
4xx, or still failing after a few tries) is dead-lettered and the consumer moves past it. A dependency that does not answer
(`Unavailable`) says nothing about the message, so it is retried until it succeeds and
its offset is not committed meanwhile: an outage delays fan-out but never loses an event.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Protocol, Sequence

from opentelemetry import trace
from tenacity import Retrying, retry_if_not_exception_type, stop_after_attempt
from tenacity import wait_exponential_jitter

from common import logs, tracing
from common.events import Event, InvalidEvent
from fanout import domain, metrics
from fanout.domain import Ports, Policy, Refused, Unavailable

log = logging.getLogger("murmur.fanout")


class Outcome(str, Enum):
    PROCESSED = "processed"
    DEAD_LETTERED = "dead_lettered"
    RETRY_LATER = "retry_later"


class Message(Protocol):
    """The parts of a Kafka record the processor reads (kafka's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class DeadLetters(Protocol):
    """Where poison messages go (the dead-letter topic)."""

    def send(self, message: Message, error: BaseException, attempts: int) -> None:
        """Store the message with its error durably; raises Unavailable if it cannot."""


class RecordProcessor:
    """Parses, handles and classifies one record at a time."""

    def __init__(self, ports: Ports, policy: Policy, dead_letters: DeadLetters, *,
                 attempts: int = 3, backoff_max: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.ports, self.policy, self.dead_letters = ports, policy, dead_letters
        self.attempts, self.backoff_max, self.sleep = attempts, backoff_max, sleep

    def process(self, message: Message) -> Outcome:
        """Handle one record; never raises for a bad message or a failing dependency."""
        token = logs.request_id_var.set(_header(message, "request_id"))
        try:
            # The span continues the producer's trace from the record headers, so the
            # users calls and Redis writes below nest under the post that caused them.
            with tracing.consumer_span(message.topic, message.partition, message.offset,
                                       message.key, message.headers) as span:
                outcome = self._process(message)
                span.set_attribute("murmur.outcome", outcome.value)
                if outcome is not Outcome.PROCESSED:
                    tracing.record_error(span, outcome.value)
                return outcome
        finally:
            logs.request_id_var.reset(token)

    def _process(self, message: Message) -> Outcome:
        try:
            event = Event.from_json(message.value)
        except InvalidEvent as exc:
            return self._dead_letter(message, "unknown", exc, "invalid", attempts=1)
        span = trace.get_current_span()
        span.set_attribute("murmur.event.type", event.type)
        span.set_attribute("murmur.event.id", str(event.event_id))
        tries = 0

        def attempt() -> int:
            nonlocal tries
            tries += 1
            return domain.handle(event, self.ports, self.policy)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=0.05, max=self.backoff_max),
            retry=retry_if_not_exception_type((InvalidEvent, Refused, Unavailable)),
            sleep=self.sleep, reraise=True)
        try:
            writes = retrying(attempt)
        except Unavailable as exc:
            log.warning("dependency unavailable, will retry %s", _where(message),
                        extra={"fields": {"event_id": event.event_id, "error": str(exc)}})
            metrics.EVENTS.labels(event.type, Outcome.RETRY_LATER.value).inc()
            return Outcome.RETRY_LATER
        except InvalidEvent as exc:
            return self._dead_letter(message, event.type, exc, "invalid", attempts=tries)
        except Refused as exc:  # e.g. the author is unknown to users: asking again won't help
            return self._dead_letter(message, event.type, exc, "refused", attempts=tries)
        except Exception as exc:  # noqa: BLE001 - anything else failed `attempts` times
            return self._dead_letter(message, event.type, exc, "failed", attempts=tries)
        metrics.DELIVERIES.labels(event.type).inc(writes)
        metrics.EVENTS.labels(event.type, Outcome.PROCESSED.value).inc()
        lag = _age_seconds(event.occurred_at)
        if lag is not None:
            metrics.LAG.labels(event.type).observe(lag)
        return Outcome.PROCESSED

    def _dead_letter(self, message: Message, event_type: str, error: BaseException,
                     reason: str, attempts: int) -> Outcome:
        try:
            self.dead_letters.send(message, error, attempts)
        except Unavailable as exc:
            log.warning("dead-letter topic unavailable, will retry %s", _where(message),
                        extra={"fields": {"error": str(exc)}})
            metrics.EVENTS.labels(event_type, Outcome.RETRY_LATER.value).inc()
            return Outcome.RETRY_LATER
        log.error("dead-lettered %s after %d attempt(s): %s: %s", _where(message), attempts,
                  type(error).__name__, error)
        metrics.DEAD_LETTERED.labels(reason).inc()
        metrics.EVENTS.labels(event_type, Outcome.DEAD_LETTERED.value).inc()
        return Outcome.DEAD_LETTERED


def _where(message: Message) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


def _header(message: Message, name: str) -> str:
    for key, value in message.headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def _age_seconds(occurred_at: Any) -> float | None:
    try:
        then = datetime.fromisoformat(str(occurred_at))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())

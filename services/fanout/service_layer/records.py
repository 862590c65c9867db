"""One record in, one outcome out: processed, dead-lettered, or retry later.

The difference between a poison message and a transient outage decides what happens to
the offset. A message that can never succeed (malformed, refused by a dependency, or still
failing after a few tries, e.g. because a dependency keeps answering garbage) is
dead-lettered and the consumer moves past it. A dependency that does not answer
(`Unavailable`) says nothing about the message, so it is retried until it succeeds and its
offset is not committed meanwhile: an outage delays fan-out but never loses an event.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable

from opentelemetry import trace
from tenacity import Retrying, retry_if_not_exception_type, stop_after_attempt
from tenacity import wait_exponential_jitter

from common.events import Event, InvalidEvent

from fanout import metrics
from fanout.domain.errors import Refused, Unavailable
from fanout.domain.model import Policy
from fanout.service_layer import handlers
from fanout.service_layer.ports import Message, Ports

log = logging.getLogger("murmur.fanout")


class Outcome(str, Enum):
    PROCESSED = "processed"
    DEAD_LETTERED = "dead_lettered"
    RETRY_LATER = "retry_later"


class RecordProcessor:
    """Parses, handles and classifies one record at a time."""

    def __init__(self, ports: Ports, policy: Policy, *, attempts: int = 3,
                 backoff_max: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ports, self.policy = ports, policy
        self.attempts, self.backoff_max, self.sleep = attempts, backoff_max, sleep

    def process(self, message: Message) -> Outcome:
        """Handle one record; never raises for a bad message or a failing dependency."""
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
            return handlers.handle(event, self.ports, self.policy)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=0.05, max=self.backoff_max),
            retry=retry_if_not_exception_type((InvalidEvent, Refused, Unavailable)),
            sleep=self.sleep, reraise=True)
        try:
            writes = retrying(attempt)
        except Unavailable as exc:
            log.warning("dependency unavailable, will retry %s", where(message),
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
            self.ports.dead_letters.send(message, error, attempts)
        except Unavailable as exc:
            log.warning("dead-letter topic unavailable, will retry %s", where(message),
                        extra={"fields": {"error": str(exc)}})
            metrics.EVENTS.labels(event_type, Outcome.RETRY_LATER.value).inc()
            return Outcome.RETRY_LATER
        log.error("dead-lettered %s after %d attempt(s): %s: %s", where(message), attempts,
                  type(error).__name__, error)
        metrics.DEAD_LETTERED.labels(reason).inc()
        metrics.EVENTS.labels(event_type, Outcome.DEAD_LETTERED.value).inc()
        return Outcome.DEAD_LETTERED


def where(message: Message) -> str:
    """topic[partition]@offset of a record, for logs."""
    return f"{message.topic}[{message.partition}]@{message.offset}"


def _age_seconds(occurred_at: Any) -> float | None:
    try:
        then = datetime.fromisoformat(str(occurred_at))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())

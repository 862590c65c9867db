"""One record in, one outcome out: processed, dead-lettered, or held to be tried again.

Only poison is dead-lettered, and only the record itself can be poison (`poison_reason`):
it cannot be parsed or breaks the event schema (`InvalidEvent`), or a dependency says
that what it names does not exist (`Refused`). The consumer moves past those.

Anything else is not the record's fault, and the record must not be skipped for it: a
dependency that does not answer (`Unavailable`, RETRY_LATER), and every other failure
(FAILED): a bug raising in a handler, a dependency answering what was not agreed. A bad
deploy would otherwise drain fan-out into the dead-letter topic. The record is tried a
few times at once (a hiccup passes), then its offset is not committed: the worker holds
the partition at it and tries again with a growing, capped backoff, so the events behind
it keep their order, and once the deploy is fixed fan-out resumes with nothing lost.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable

from opentelemetry import trace
from tenacity import Retrying, retry_if_exception, stop_after_attempt
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
    RETRY_LATER = "retry_later"  # a dependency did not answer: held, tried again
    FAILED = "failed"  # failed for a reason that is not the record's: held, tried again

    @property
    def holds(self) -> bool:
        """Whether the record's partition must stay at it (not committed past)."""
        return self in (Outcome.RETRY_LATER, Outcome.FAILED)


POISON_REASONS = ("invalid", "refused")


def poison_reason(error: BaseException) -> str | None:
    """Why `error` makes its record poison ('invalid', 'refused'), or None when the fault
    lies elsewhere and the record must wait for it to be put right."""
    if isinstance(error, InvalidEvent):
        return "invalid"
    if isinstance(error, Refused):
        return "refused"
    return None


def _worth_retrying_now(error: BaseException) -> bool:
    # Poison never changes, and an outage is waited out by the worker, not in here.
    return poison_reason(error) is None and not isinstance(error, Unavailable)


class RecordProcessor:
    """Parses, handles and classifies one record at a time.

    `failures` holds, per partition, the latest failure of a record held there (what
    readiness reports); it is cleared when a record of that partition gets past.
    """

    def __init__(self, ports: Ports, policy: Policy, *, attempts: int = 3,
                 backoff_max: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ports, self.policy = ports, policy
        self.attempts, self.backoff_max, self.sleep = attempts, backoff_max, sleep
        self.failures: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        for reason in POISON_REASONS:  # exported at 0: "none dead-lettered" is a figure
            metrics.DEAD_LETTERED.labels(reason)

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
            retry=retry_if_exception(_worth_retrying_now), sleep=self.sleep, reraise=True)
        try:
            writes = retrying(attempt)
        except Unavailable as exc:
            log.warning("dependency unavailable, will retry %s", where(message),
                        extra={"fields": {"event_id": event.event_id, "error": str(exc)}})
            metrics.EVENTS.labels(event.type, Outcome.RETRY_LATER.value).inc()
            return Outcome.RETRY_LATER
        except Exception as exc:  # noqa: BLE001 - classified below, never raised
            reason = poison_reason(exc)
            if reason is not None:
                return self._dead_letter(message, event.type, exc, reason, attempts=tries)
            return self._failed(message, event, exc, tries)
        self._forget_failure(message)
        metrics.DELIVERIES.labels(event.type).inc(writes)
        metrics.EVENTS.labels(event.type, Outcome.PROCESSED.value).inc()
        lag = _age_seconds(event.occurred_at)
        if lag is not None:
            metrics.LAG.labels(event.type).observe(lag)
        return Outcome.PROCESSED

    def _failed(self, message: Message, event: Event, error: BaseException,
                attempts: int) -> Outcome:
        detail = f"{type(error).__name__}: {error}"
        with self._lock:
            again = self.failures.get((message.topic, message.partition)) == detail
            self.failures[(message.topic, message.partition)] = detail
        # The traceback once per failure, not at every try while the partition is held.
        log.error("%s failed %d time(s), holding its partition to try again: %s",
                  where(message), attempts, detail, exc_info=None if again else error,
                  extra={"fields": {"event_id": event.event_id, "event_type": event.type}})
        metrics.EVENTS.labels(event.type, Outcome.FAILED.value).inc()
        return Outcome.FAILED

    def _forget_failure(self, message: Message) -> None:
        with self._lock:
            self.failures.pop((message.topic, message.partition), None)

    def _dead_letter(self, message: Message, event_type: str, error: BaseException,
                     reason: str, attempts: int) -> Outcome:
        try:
            self.ports.dead_letters.send(message, error, attempts)
        except Unavailable as exc:
            log.warning("dead-letter topic unavailable, will retry %s", where(message),
                        extra={"fields": {"error": str(exc)}})
            metrics.EVENTS.labels(event_type, Outcome.RETRY_LATER.value).inc()
            return Outcome.RETRY_LATER
        self._forget_failure(message)
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

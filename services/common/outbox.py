"""The outbox relay, written once for every store: outbox rows to Kafka, at least once.

A service writes each event into its outbox in the same transaction (or logged batch) as
the change the event reports; a relay process moves the events on to Kafka. This module
is that process's engine. What differs between stores is behind ports:

- `Outbox`: claim a bucket's oldest pending messages, settle (mark or delete) the ones the
  broker acknowledged, count the backlog, prune settled rows.
- `Leases`: which buckets this relay may publish (`FixedBuckets` where the store itself
  keeps two relays apart, e.g. Postgres `FOR UPDATE SKIP LOCKED`).
- `Wakeups`: a nudge when a writer added a message, so the relay need not poll hard.
- `Publisher`: `common.outbox_kafka.KafkaPublisher` (acks=all, idempotent producer, a
  producer span per message continuing the trace that wrote it).

`common.outbox_process.run` runs a relay as a process (signals, probes, /metrics). This
module imports no driver: a writer may use `OutboxMessage` from anywhere.

Guarantees:
- At least once: a message is settled only after the broker acknowledged it. Kafka being
  down only delays it; a relay dying between the acknowledgement and the settle publishes
  it again, which consumers absorb (every consumer dedupes).
- Order: per bucket, messages are published in order and only the acknowledged prefix of
  a batch is settled, so a message is never settled while an earlier one waits.
- A lost wake-up costs at most `sweep_interval`: every owned bucket is looked at that often.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterable, Mapping, Protocol, Sequence

from common.metrics import OUTBOX_BACKLOG

log = logging.getLogger("murmur.outbox")


@dataclass(frozen=True)
class OutboxMessage:
    """An event waiting in an outbox, written in the same transaction as its change.

    `id` orders the messages of a bucket (a snowflake or a sequence); `bucket` is the
    outbox partition it waits in (0 in an outbox that has only one); `payload` is the
    serialised envelope as it goes on the wire.
    """

    id: int
    topic: str
    key: str
    payload: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    bucket: int = 0


@dataclass
class Claim:
    """A bucket's oldest pending messages, held for this relay until the claim ends."""

    messages: list[OutboxMessage]
    settle: Callable[[Sequence[OutboxMessage]], None]  # mark or delete the published ones


class Outbox(Protocol):
    """A store's outbox as the relay sees it."""

    def claim(self, bucket: int, limit: int) -> ContextManager[Claim]:
        """Up to `limit` pending messages of `bucket`, oldest first.

        Settling happens inside the `with` block; leaving it releases what is not settled.
        """

    def backlog(self) -> int | None:
        """Messages waiting to be published, if the store can count them cheaply.

        None: the relay reports what its claims saw instead (a lower bound).
        """

    def prune(self, limit: int) -> int:
        """Remove up to `limit` settled rows the store keeps no longer; how many went."""

    def forget(self, bucket: int) -> None:
        """This relay no longer owns `bucket`: drop whatever the store remembers of it."""


class Leases(Protocol):
    """Which buckets this relay publishes; two relays never hold the same one."""

    def maintain(self) -> list[int]:
        """Renew the buckets held, take free ones; the buckets held now."""

    def release(self) -> None:
        """Give every bucket up at once, so a standby takes over without waiting."""


class Wakeups(Protocol):
    """Nudges from the writers; a lost one costs at most a sweep interval."""

    def wait(self, timeout: float) -> set[int]:
        """The buckets nudged within `timeout` seconds (empty if none)."""

    def close(self) -> None:
        """Stop listening."""


class Publisher(Protocol):
    """Sends messages to the broker in order."""

    def publish(self, messages: Sequence[OutboxMessage]) -> int:
        """Send `messages`; returns len(messages) once all are acknowledged.

        Raises PublishFailed (carrying how many, from the first, were acknowledged) when
        the broker did not acknowledge them all.
        """

    def close(self) -> None:
        """Flush what is in flight and let go of the broker."""


class PublishFailed(Exception):
    """The broker acknowledged only the first `acked` messages of a batch.

    `outage`: the broker was away (`common.outages`), which passes by itself; otherwise it
    refused the rest (a record too large, a topic not authorised), which does not.
    """

    def __init__(self, reason: str, acked: int = 0, *, outage: bool = True) -> None:
        super().__init__(reason)
        self.acked = acked
        self.outage = outage


class FixedBuckets:
    """Leases for an outbox whose store keeps relays apart itself: these buckets are ours."""

    def __init__(self, buckets: Iterable[int] = (0,)) -> None:
        self.buckets = list(buckets)

    def maintain(self) -> list[int]:
        return list(self.buckets)

    def release(self) -> None:
        pass


class NoWakeups:
    """No nudges: the relay looks at its buckets every sweep interval."""

    def wait(self, timeout: float) -> set[int]:
        time.sleep(timeout)
        return set()

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------- the relay


@dataclass(frozen=True)
class RelaySettings:
    """How a relay paces itself."""

    batch: int = 500  # messages claimed (and published) at once per bucket
    idle_poll: float = 0.1  # longest wait for a wake-up before looking again
    sweep_interval: float = 1.0  # every owned bucket is looked at this often, nudged or not
    lease_renewal: float = 3.0  # seconds between lease renewals (well within their TTL)
    retry_backoff: float = 0.1  # pause after a failed pass, doubled per failure ...
    max_backoff: float = 2.0  # ... up to this: publishing resumes soon after a fault ends
    backlog_interval: float = 1.0  # seconds between two updates of the backlog gauge
    prune_interval: float = 60.0  # seconds between two prunes (at once while one was full)
    prune_batch: int = 1000  # rows removed per prune, so one never holds up publishing


class Relay:
    """Moves outbox messages to Kafka, bucket by bucket, in order."""

    def __init__(self, name: str, outbox: Outbox, publisher: Publisher, *,
                 leases: Leases | None = None, wakeups: Wakeups | None = None,
                 settings: RelaySettings = RelaySettings(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.outbox, self.publisher = name, outbox, publisher
        self.leases = leases or FixedBuckets()
        self.wakeups = wakeups or NoWakeups()
        self.settings, self.clock = settings, clock
        self.owned: list[int] = []
        self.failures = 0  # consecutive failed passes
        self._refused = False  # one of them was the broker refusing, not being away
        self._seen: dict[int, int] = {}  # messages left pending at the last claim, by bucket
        self._leases_at = self._backlog_at = self._prune_at = float("-inf")

    # ------------------------------------------------------------------ one pass

    def renew_leases(self, force: bool = False) -> list[int]:
        """Keep our buckets and take free ones (at most every `lease_renewal` seconds)."""
        now = self.clock()
        if force or now - self._leases_at >= self.settings.lease_renewal:
            owned = self.leases.maintain()
            for bucket in sorted(set(self.owned) - set(owned)):
                self._seen.pop(bucket, None)
                self.outbox.forget(bucket)
                log.info("lost the lease of %s outbox bucket %d", self.name, bucket)
            if set(owned) - set(self.owned):
                log.info("relaying %s outbox buckets %s", self.name, owned)
            elif not owned and self._leases_at == float("-inf"):
                log.info("no %s outbox bucket free: standing by", self.name)
            self.owned, self._leases_at = owned, now
        return self.owned

    def relay_bucket(self, bucket: int) -> tuple[int, bool]:
        """Publish one batch of a bucket; (messages published, bucket drained)."""
        with self.outbox.claim(bucket, self.settings.batch) as claim:
            messages = claim.messages
            self._seen[bucket] = len(messages)
            if not messages:
                return 0, True
            try:
                acked = self.publisher.publish(messages)
            except PublishFailed as failed:
                claim.settle(messages[:failed.acked])
                self._seen[bucket] -= failed.acked
                raise
            claim.settle(messages)
            self._seen[bucket] = 0
            return acked, len(messages) < self.settings.batch

    def run_once(self, buckets: Iterable[int] | None = None) -> tuple[int, bool]:
        """One pass over the owned buckets (all, or those named); (published, all drained).

        Raises whatever stopped it (PublishFailed, a store error): `run` backs off.
        """
        owned = self.renew_leases()
        targets = owned if buckets is None else [b for b in sorted(set(buckets)) if b in owned]
        published, drained = 0, True
        for bucket in targets:
            count, done = self.relay_bucket(bucket)
            published, drained = published + count, drained and done
        return published, drained

    # ------------------------------------------------------------------- the loop

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set, backing off while Kafka or the store is down."""
        log.info("%s outbox relay started", self.name)
        nudged: set[int] = set()
        swept_at = float("-inf")
        while not stop.is_set():
            self.refresh_backlog()
            self.prune()
            sweep = self.clock() - swept_at >= self.settings.sweep_interval
            try:
                _, drained = self.run_once(None if sweep else nudged)
            except Exception as exc:  # noqa: BLE001 - keep relaying once the fault passes
                self.failures += 1
                refused = isinstance(exc, PublishFailed) and not exc.outage
                if refused and not self._refused:
                    # Retried all the same (a topic's settings or ACLs may be fixed), but
                    # the bucket is stuck until someone does: said once, as an error.
                    log.error("%s outbox relay: the broker refused a message, will retry: "
                              "%s", self.name, exc)
                elif self.failures == 1 and not refused:
                    # One warning when an outage starts, not one per retry.
                    log.warning("%s outbox relay cannot publish, will retry: %s: %s",
                                self.name, type(exc).__name__, exc)
                self._refused = self._refused or refused
                stop.wait(self.backoff())
                continue
            if self.failures:
                log.info("%s outbox relay publishing again after %d failed attempts",
                         self.name, self.failures)
                self.failures, self._refused = 0, False
            if sweep:
                swept_at = self.clock()
            # A bucket with more than one batch waiting goes round again at once.
            nudged = self.wakeups.wait(self.settings.idle_poll) if drained else set(self.owned)
        log.info("%s outbox relay stopped", self.name)

    def backoff(self) -> float:
        """The pause after the current run of failures: exponential, capped."""
        first, cap = self.settings.retry_backoff, self.settings.max_backoff
        return min(first * 2 ** (self.failures - 1), cap)

    def refresh_backlog(self) -> None:
        """Export how many messages wait (at most every `backlog_interval` seconds)."""
        now = self.clock()
        if now - self._backlog_at < self.settings.backlog_interval:
            return
        self._backlog_at = now
        try:
            counted = self.outbox.backlog()
        except Exception as exc:  # noqa: BLE001 - the next pass reports the store being down
            log.debug("cannot count the %s outbox backlog: %s", self.name, exc)
            return
        # What the claims saw is a lower bound: one claim sees at most a batch.
        pending = sum(self._seen.values()) if counted is None else counted
        OUTBOX_BACKLOG.labels(self.name).set(pending)

    def prune(self) -> None:
        """Remove settled rows past their retention, a bounded batch at a time."""
        if self.clock() < self._prune_at:
            return
        try:
            pruned = self.outbox.prune(self.settings.prune_batch)
        except Exception as exc:  # noqa: BLE001 - pruning waits; publishing goes on
            log.warning("cannot prune the %s outbox: %s: %s", self.name, type(exc).__name__, exc)
            pruned = 0
        if pruned:
            log.debug("pruned %d %s outbox rows", pruned, self.name)
        # A full batch means more is due: the next pass prunes again.
        full = pruned >= self.settings.prune_batch
        self._prune_at = self.clock() + (0.0 if full else self.settings.prune_interval)

    def close(self) -> None:
        """Stop listening, flush the producer and give the leases up."""
        for close in (self.wakeups.close, self.publisher.close, self.leases.release):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - close the rest regardless
                log.warning("closing the %s relay: %s: %s", self.name, type(exc).__name__, exc)

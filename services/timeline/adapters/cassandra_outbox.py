"""The timeline outbox in Cassandra, as the relay sees it (`common.outbox.Outbox`).

The outbox is partitioned in buckets (an author's events share one, in event-id order).
A claim reads a bucket's pending rows in order; settling deletes the published ones, so
there is nothing left to prune. The relay's leases (`redis_outbox.RedisBucketLeases`)
keep two relays off the same bucket: a claim here locks nothing.

Tombstones: deleted rows leave tombstones that later reads must step over (Cassandra drops
them only after gc_grace_seconds, see schema 0002). So a bucket is read whole only when
this relay takes it over; once drained, only from a watermark `LATE_WINDOW_MS` in the past,
and every `RESCAN_INTERVAL` seconds from `RESCAN_WINDOW_MS` back, for a row whose logged
batch landed unusually late.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from cassandra.query import BatchType

from common import ids
from common.outbox import Claim, OutboxMessage

if TYPE_CHECKING:
    from timeline.adapters.cassandra_store import CassandraSession

LATE_WINDOW_MS = 30_000  # longest a logged batch may take to land after its id was issued
RESCAN_WINDOW_MS = 600_000  # how far back the periodic rescan looks
RESCAN_INTERVAL = 60.0

SELECT_OUTBOX = ("SELECT event_id, topic, key, payload, headers FROM {ks}.outbox "
                 "WHERE bucket = ? AND event_id > ? LIMIT ?")
DELETE_OUTBOX = "DELETE FROM {ks}.outbox WHERE bucket = ? AND event_id = ?"


def id_floor(unix_ms: int) -> int:
    """The smallest snowflake id issued at `unix_ms` or later."""
    return max(0, unix_ms - ids.MURMUR_EPOCH_MS) << (ids.WORKER_BITS + ids.SEQUENCE_BITS)


class Watermarks:
    """Per bucket, the event id below which a read need not look (everything is sent)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._floors: dict[int, int] = {}
        self._rescan_at = clock()

    def after(self, bucket: int) -> int:
        """Where the next read of `bucket` starts (0, the whole bucket, until drained)."""
        if self.clock() - self._rescan_at >= RESCAN_INTERVAL:
            floor = id_floor(int(self.clock() * 1000) - RESCAN_WINDOW_MS)
            self._floors = {b: min(f, floor) for b, f in self._floors.items()}
            self._rescan_at = self.clock()
        return self._floors.get(bucket, 0)

    def drained(self, bucket: int) -> None:
        """Everything of `bucket` was sent: later reads start a late window back from now."""
        self._floors[bucket] = id_floor(int(self.clock() * 1000) - LATE_WINDOW_MS)

    def forget(self, bucket: int) -> None:
        """The next read of `bucket` reads it whole again."""
        self._floors.pop(bucket, None)


class CassandraOutbox:
    """Read a bucket in event order, delete what was published."""

    def __init__(self, db: CassandraSession, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.watermarks = Watermarks(clock)

    @contextmanager
    def claim(self, bucket: int, limit: int) -> Iterator[Claim]:
        """Up to `limit` events of `bucket` above its watermark, oldest first."""
        rows = self.db.session.execute(self.db.prepare(SELECT_OUTBOX),
                                       (bucket, self.watermarks.after(bucket), limit))
        messages = [OutboxMessage(r.event_id, r.topic, r.key, r.payload.encode(),
                                  dict(r.headers or {}), bucket) for r in rows]

        def delete(published: Sequence[OutboxMessage]) -> None:
            self._delete(bucket, [m.id for m in published])
            if len(published) == len(messages) < limit:
                self.watermarks.drained(bucket)

        if not messages:
            self.watermarks.drained(bucket)
        yield Claim(messages, delete)

    def _delete(self, bucket: int, event_ids: Sequence[int]) -> None:
        # One partition, so one unlogged batch is one mutation.
        if not event_ids:
            return
        batch = self.db.batch(BatchType.UNLOGGED)
        statement = self.db.prepare(DELETE_OUTBOX)
        for event_id in event_ids:
            batch.add(statement, (bucket, event_id))
        self.db.session.execute(batch)

    def backlog(self) -> None:
        """Not counted here: a count would read every bucket and its tombstones."""
        return None

    def prune(self, limit: int) -> int:
        """Nothing to prune: published rows are deleted as they are settled."""
        return 0

    def forget(self, bucket: int) -> None:
        """Another relay owns `bucket` now: if it comes back, read it whole."""
        self.watermarks.forget(bucket)

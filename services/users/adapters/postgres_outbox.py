"""The users outbox in Postgres, as the relay sees it (`common.outbox.Outbox`).

One bucket: the whole table, in id order. Rows are claimed with `FOR UPDATE SKIP LOCKED`
inside a transaction that lasts while the batch is published, so two relays never publish
the same row at the same time, and marking the published ones commits with the claim.
Per-key order is only guaranteed with one relay running, because two relays work on
different batches concurrently: run more for availability, not for speed.

Published rows are kept for `retention` seconds, then pruned in bounded batches: they show
what was published and when (`published_at - created_at` is the relay's lag), and clearing
`published_at` over a window publishes it again (consumers dedupe) — cheap in Postgres,
where a delete leaves no tombstone for later reads to step over.

A trigger NOTIFYs `users_outbox` on every insert (migration 0003); `PostgresWakeups`
LISTENs, so the relay usually reacts within milliseconds of a commit.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from common.outbox import Claim, OutboxMessage

log = logging.getLogger("murmur.users.outbox")

CHANNEL = "users_outbox"

CLAIM = ("SELECT id, topic, key, payload, headers FROM outbox WHERE published_at IS NULL "
          "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED")  # the partial index outbox_unpublished
MARK = "UPDATE outbox SET published_at = now() WHERE id = ANY(%s)"
BACKLOG = "SELECT count(*) FROM outbox WHERE published_at IS NULL"  # the same partial index
# Oldest first along the partial index outbox_published; rows a concurrent prune holds are
# skipped rather than waited for.
PRUNE = ("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
          "WHERE published_at < now() - make_interval(secs => %s) "
          "ORDER BY published_at LIMIT %s FOR UPDATE SKIP LOCKED)")


def _message(row: tuple) -> OutboxMessage:
    row_id, topic, key, payload, headers = row
    return OutboxMessage(row_id, topic, key,
                         json.dumps(payload, separators=(",", ":")).encode(),
                         dict(headers or {}))


class PostgresOutbox:
    """Claim unpublished rows, mark the published ones, prune the old ones."""

    def __init__(self, pool: ConnectionPool, *, retention: float = 3600.0) -> None:
        self.pool, self.retention = pool, retention

    @contextmanager
    def claim(self, bucket: int, limit: int) -> Iterator[Claim]:
        """The oldest unpublished rows no other relay holds, locked until the block ends."""
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(CLAIM, (limit,)).fetchall()

            def mark(published: Sequence[OutboxMessage]) -> None:
                if published:
                    conn.execute(MARK, ([m.id for m in published],))

            yield Claim([_message(row) for row in rows], mark)

    def backlog(self) -> int:
        """Rows waiting to be published (an index-only count)."""
        with self.pool.connection(timeout=1.0) as conn:
            (pending,) = conn.execute(BACKLOG).fetchone()
        return pending

    def prune(self, limit: int) -> int:
        """Delete up to `limit` rows published more than `retention` seconds ago."""
        with self.pool.connection() as conn, conn.transaction():
            return conn.execute(PRUNE, (self.retention, limit)).rowcount

    def forget(self, bucket: int) -> None:
        """Nothing to forget: every claim starts from the table itself."""


class PostgresWakeups:
    """LISTEN on the outbox channel; without a connection, the relay polls instead."""

    def __init__(self, conninfo: str, channel: str = CHANNEL) -> None:
        self.conninfo, self.channel = conninfo, channel
        self._listener: psycopg.Connection | None = None

    def wait(self, timeout: float) -> set[int]:
        """{0} at the first notification within `timeout` seconds, else an empty set."""
        try:
            if self._listener is None:
                self._listener = psycopg.connect(self.conninfo, autocommit=True)
                self._listener.execute(f"LISTEN {self.channel}")
            notified = list(self._listener.notifies(timeout=timeout, stop_after=1))
            return {0} if notified else set()
        except psycopg.Error as exc:
            if self._listener is not None:
                log.warning("lost the outbox notifications, polling until back: %s", exc)
            else:
                log.debug("cannot LISTEN yet, polling instead: %s", exc)
            self.close()
            time.sleep(timeout)  # a database refusing connections is not asked again at once
            return set()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except psycopg.Error:
                pass

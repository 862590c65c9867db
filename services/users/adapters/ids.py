"""Snowflake user ids whose worker id is leased on Redis, so no two processes share one."""

from __future__ import annotations

import os
import socket
import threading
import uuid

from common.ids import IdGenerator, WorkerLease


class LeasedIds:
    """The IdSource: leases a worker id on first use (not at import or fork) and keeps it."""

    def __init__(self, redis_client, prefix: str, ttl: int) -> None:
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease = WorkerLease(redis_client, prefix, owner, ttl)
        self._generator: IdGenerator | None = None
        self._lock = threading.Lock()

    def next_id(self) -> int:
        """A new unique, time-sortable 64-bit id."""
        generator = self._generator
        if generator is None:
            with self._lock:
                if self._generator is None:
                    self._generator = IdGenerator(self._lease.acquire())
                generator = self._generator
        return generator.next_id()

    def close(self) -> None:
        """Stop renewing the lease; the worker id frees up when it expires."""
        self._lease.release()

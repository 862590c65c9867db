"""64-bit time-sortable ids (Snowflake layout) that never repeat.

Layout, most significant first: 1 sign bit (always 0), 41 bits of milliseconds since
MURMUR_EPOCH, 10 bits of worker id, 12 bits of sequence. Ids from one generator strictly
increase; ids from generators with different worker ids never collide.

Worker ids are leased (see `WorkerLease`) so two live processes never share one. When the
clock steps back, the generator keeps issuing ids from its last timestamp (borrowing
sequence numbers, then future milliseconds) instead of reusing old ones.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

MURMUR_EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


class IdGenerator:
    """Thread-safe Snowflake id generator for one worker id."""

    def __init__(self, worker_id: int, clock_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id must be within 0..{MAX_WORKER}, got {worker_id}")
        self.worker_id = worker_id
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        """The next id: greater than every id this generator issued before."""
        with self._lock:
            now = self._clock_ms() - MURMUR_EPOCH_MS
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            elif self._sequence < MAX_SEQUENCE:
                # Same millisecond, or the clock stepped back: stay on the last timestamp.
                self._sequence += 1
            else:
                # Sequence exhausted: move into the next millisecond rather than wait.
                self._last_ms, self._sequence = self._last_ms + 1, 0
            return (self._last_ms << (WORKER_BITS + SEQUENCE_BITS)) | (
                self.worker_id << SEQUENCE_BITS
            ) | self._sequence


def timestamp_ms(snowflake: int) -> int:
    """Unix milliseconds at which `snowflake` was issued."""
    return (snowflake >> (WORKER_BITS + SEQUENCE_BITS)) + MURMUR_EPOCH_MS


class LeaseStore(Protocol):
    """What a worker-id lease needs from a store (Redis implements it)."""

    def set(self, name: str, value: str, nx: bool = ..., ex: int = ...) -> object: ...

    def expire(self, name: str, time: int) -> object: ...

    def get(self, name: str) -> object: ...


class WorkerLease:
    """Lease a unique worker id from a shared store, renewed in the background.

    Each live process holds `prefix:{n}` (SET NX with a TTL) for its worker id n; a process
    that dies stops renewing and its id frees up after the TTL, so ids are reused only
    once their holder is gone.
    """

    def __init__(self, store: LeaseStore, prefix: str, owner: str, ttl: int = 30) -> None:
        self.store, self.prefix, self.owner, self.ttl = store, prefix, owner, ttl
        self.worker_id: int | None = None
        self._stop = threading.Event()

    def acquire(self) -> int:
        """Claim the first free worker id and start renewing it."""
        for candidate in range(MAX_WORKER + 1):
            if self.store.set(f"{self.prefix}:{candidate}", self.owner, nx=True, ex=self.ttl):
                self.worker_id = candidate
                threading.Thread(target=self._renew, daemon=True, name="worker-lease").start()
                return candidate
        raise RuntimeError("no free worker id: more than 1024 live id generators")

    def _renew(self) -> None:
        key = f"{self.prefix}:{self.worker_id}"
        while not self._stop.wait(self.ttl / 3):
            try:
                holder = self.store.get(key)
                if holder in (None, self.owner, self.owner.encode()):
                    self.store.set(key, self.owner, ex=self.ttl)
            except Exception:  # noqa: BLE001 - a missed renewal is retried next period
                continue

    def release(self) -> None:
        """Stop renewing (the id frees up when the lease expires)."""
        self._stop.set()

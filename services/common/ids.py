"""64-bit time-sortable ids (Snowflake layout) that never repeat.

Layout, most significant first: 1 sign bit (always 0), 41 bits of milliseconds since
MURMUR_EPOCH, 10 bits of worker id, 12 bits of sequence. Ids from one generator strictly
increase; ids from generators with different worker ids never collide.

Worker ids are leased (see `WorkerLease`) so two live processes never share one. When the
clock steps back, the generator keeps issuing ids from its last timestamp (borrowing
sequence numbers, then future milliseconds) instead of reusing old ones.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
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

    def get(self, name: str) -> object: ...

    def expire(self, name: str, time: int) -> object: ...


class LeaseLost(RuntimeError):
    """This process no longer holds its worker id (another process may now)."""


class WorkerLease:
    """Lease a unique worker id from a shared store, renewed in the background.

    Each live process holds `prefix:{n}` (SET NX with a TTL) for its worker id n; a process
    that dies stops renewing and its id frees up after the TTL. The lease is *fenced by
    time*: it counts as held only until its last confirmed renewal plus the TTL minus a
    safety margin, so a process cut off from the store stops using the id before anyone
    else can take it.
    """

    def __init__(self, store: LeaseStore, prefix: str, owner: str, ttl: int = 30,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.prefix, self.owner, self.ttl = store, prefix.rstrip(":"), owner, ttl
        self.clock = clock
        self.worker_id: int | None = None
        self.lost = False
        self._valid_until = 0.0
        self._stop = threading.Event()

    def acquire(self) -> int:
        """Claim the first free worker id and start renewing it."""
        for candidate in range(MAX_WORKER + 1):
            started = self.clock()
            if self.store.set(f"{self.prefix}:{candidate}", self.owner, nx=True, ex=self.ttl):
                self.worker_id = candidate
                self._valid_until = started + self.ttl * 2 / 3
                threading.Thread(target=self._renew, daemon=True, name="worker-lease").start()
                return candidate
        raise RuntimeError("no free worker id: more than 1024 live id generators")

    def valid(self) -> bool:
        """True while the lease is certainly still ours."""
        return not self.lost and self.worker_id is not None and self.clock() < self._valid_until

    def renew(self) -> None:
        """Extend the lease once; marks it lost if another process holds the id now."""
        key = f"{self.prefix}:{self.worker_id}"
        started = self.clock()
        holder = self.store.get(key)
        if holder is None:
            # Expired while we could not reach the store: take it back only if still free.
            if not self.store.set(key, self.owner, nx=True, ex=self.ttl):
                self.lost = True
                return
        elif holder not in (self.owner, self.owner.encode()):
            self.lost = True
            return
        else:
            self.store.expire(key, self.ttl)
        self._valid_until = started + self.ttl * 2 / 3

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3) and not self.lost:
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a missed renewal is retried next period
                continue

    def release(self) -> None:
        """Stop renewing (the id frees up when the lease expires)."""
        self._stop.set()


def owner_name(process: str) -> str:
    """A lease owner no other process shares, even after a restart: host, pid, random."""
    return f"{process}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeasedIds:
    """Ids from a leased worker id: leased on first use (after any fork), re-leased when
    the lease can no longer be trusted, so no two live processes ever share a worker id."""

    def __init__(self, store: LeaseStore, owner: str, prefix: str = "ids:worker",
                 ttl: int = 30) -> None:
        self.store, self.owner, self.prefix, self.ttl = store, owner, prefix, ttl
        self._lock = threading.Lock()
        self._lease: WorkerLease | None = None
        self._generator: IdGenerator | None = None

    def next_id(self) -> int:
        """A new unique, time-sortable id; raises if no worker id can be leased."""
        lease, generator = self._lease, self._generator
        if lease is None or generator is None or not lease.valid():
            with self._lock:
                if self._lease is None or not self._lease.valid():
                    if self._lease is not None:
                        self._lease.release()
                    lease = WorkerLease(self.store, self.prefix, self.owner, self.ttl)
                    self._generator = IdGenerator(lease.acquire())
                    self._lease = lease
                generator = self._generator
        return generator.next_id()

    @property
    def worker_id(self) -> int | None:
        """The worker id currently leased (None before the first id)."""
        return self._lease.worker_id if self._lease else None

    def release(self) -> None:
        """Stop renewing the lease; the worker id frees up when it expires."""
        if self._lease is not None:
            self._lease.release()

    close = release

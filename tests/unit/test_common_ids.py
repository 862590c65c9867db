"""Snowflake ids: time-ordered, unique per worker and across workers, safe on clock step-back."""

from __future__ import annotations

import threading

import pytest

from common.ids import (MAX_SEQUENCE, MURMUR_EPOCH_MS, IdGenerator, LeasedIds, WorkerLease,
                        timestamp_ms)


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_ids_increase_strictly_and_carry_their_timestamp():
    clock = FakeClock(MURMUR_EPOCH_MS + 1_000)
    gen = IdGenerator(7, clock)
    first = gen.next_id()
    clock.ms += 5
    second = gen.next_id()
    assert second > first
    assert timestamp_ms(first) == MURMUR_EPOCH_MS + 1_000
    assert timestamp_ms(second) == MURMUR_EPOCH_MS + 1_005


def test_a_clock_stepping_back_never_repeats_or_reorders_an_id():
    clock = FakeClock(MURMUR_EPOCH_MS + 50_000)
    gen = IdGenerator(1, clock)
    before = [gen.next_id() for _ in range(10)]
    clock.ms -= 10_000  # NTP stepped the clock back ten seconds
    after = [gen.next_id() for _ in range(10)]
    ids = before + after
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_exhausted_sequence_moves_into_the_next_millisecond():
    gen = IdGenerator(3, FakeClock(MURMUR_EPOCH_MS + 10))
    ids = [gen.next_id() for _ in range(MAX_SEQUENCE + 3)]
    assert len(set(ids)) == len(ids)
    assert timestamp_ms(ids[-1]) == MURMUR_EPOCH_MS + 11


def test_two_workers_never_collide_even_in_the_same_millisecond():
    clock = FakeClock(MURMUR_EPOCH_MS + 99)
    a, b = IdGenerator(1, clock), IdGenerator(2, clock)
    ids_a = {a.next_id() for _ in range(1000)}
    ids_b = {b.next_id() for _ in range(1000)}
    assert not ids_a & ids_b


def test_threads_sharing_a_generator_get_distinct_ids():
    gen = IdGenerator(9)
    results: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        out.extend(gen.next_id() for _ in range(2000))

    threads = [threading.Thread(target=work, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for r in results for i in r]
    assert len(set(flat)) == len(flat) == 16000


def test_a_worker_id_outside_ten_bits_is_refused():
    with pytest.raises(ValueError):
        IdGenerator(1024)


class DictLeaseStore:
    """Just enough of SET NX EX for the lease logic."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def set(self, name, value, nx=False, ex=None):
        if nx and name in self.data:
            return None
        self.data[name] = value
        return True

    def expire(self, name, time):
        return name in self.data

    def get(self, name):
        value = self.data.get(name)
        return value.encode() if value is not None else None

    def delete(self, name):
        return self.data.pop(name, None) is not None


def test_two_leases_on_one_store_get_different_worker_ids():
    store = DictLeaseStore()
    first = WorkerLease(store, "ids:worker:", "proc-a")
    second = WorkerLease(store, "ids:worker:", "proc-b")
    try:
        assert first.acquire() != second.acquire()
    finally:
        first.release()
        second.release()


def test_a_lease_not_renewed_in_time_is_no_longer_trusted():
    clock = FakeClock(0)
    lease = WorkerLease(DictLeaseStore(), "ids:worker", "proc-a", ttl=30, clock=clock)
    lease.acquire()
    lease.release()  # no background renewal: the test drives time itself
    clock.ms = 19.9
    assert lease.valid()
    clock.ms = 20.1  # two thirds of the TTL: the key may expire soon, stop using the id
    assert not lease.valid()


def test_a_renewal_that_finds_another_owner_marks_the_lease_lost():
    store = DictLeaseStore()
    lease = WorkerLease(store, "ids:worker", "proc-a")
    worker = lease.acquire()
    lease.release()
    store.data[f"ids:worker:{worker}"] = "proc-b"  # expired and taken while we were cut off
    lease.renew()
    assert lease.lost and not lease.valid()


def test_leased_ids_move_to_a_free_worker_id_when_their_lease_is_lost():
    store = DictLeaseStore()
    ids = LeasedIds(store, "proc-a")
    first = ids.next_id()
    old_worker = ids.worker_id
    ids.release()
    store.data[f"ids:worker:{old_worker}"] = "proc-b"
    ids._lease.renew()
    second = ids.next_id()
    assert ids.worker_id != old_worker
    assert second != first
    ids.release()

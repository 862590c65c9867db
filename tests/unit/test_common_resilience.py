"""Deadlines, retries and breakers behave as the resilience contract says."""

from __future__ import annotations

import threading
import time

import pybreaker
import pytest

from prometheus_client import REGISTRY

from common import resilience
from common.resilience import Breaker, DeadlineExceeded
from conftest import wait_until


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("murmur_breaker_state", {"breaker": name})


class Boom(Exception):
    pass


def fail():
    raise Boom("dependency down")


def test_a_breaker_opens_after_its_threshold_and_then_fails_fast():
    b = Breaker("unit-open", fail_max=3, reset_timeout=60)
    for _ in range(2):
        with pytest.raises(Boom):
            b.call(fail)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)  # the third failure trips it
    calls = []
    started = time.perf_counter()
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(lambda: calls.append(1))
    assert calls == [] and b.is_open
    assert time.perf_counter() - started < 0.01


def test_a_half_open_trial_that_succeeds_closes_the_breaker():
    b = Breaker("unit-half-open", fail_max=1, reset_timeout=0.05)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    time.sleep(0.06)  # the reset timeout itself is what is under test
    assert b.call(lambda: "ok") == "ok"
    assert b.current_state == pybreaker.STATE_CLOSED


def test_an_open_breaker_half_opens_by_itself_when_its_reset_timeout_has_passed():
    b = Breaker("unit-auto-half-open", fail_max=1, reset_timeout=0.2)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    assert gauge("unit-auto-half-open") == 2
    wait_until(lambda: b.current_state == pybreaker.STATE_HALF_OPEN, timeout=5,
               message="the breaker half-opening without a call")
    assert gauge("unit-auto-half-open") == 1
    assert b.call(lambda: "ok") == "ok"
    assert b.current_state == pybreaker.STATE_CLOSED and gauge("unit-auto-half-open") == 0


def test_the_timer_of_an_earlier_opening_does_not_half_open_a_reopened_breaker():
    b = Breaker("unit-reopened", fail_max=1, reset_timeout=0.3)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    b.close()
    time.sleep(0.15)  # the second opening must come later than the first
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    second_opened = time.monotonic()
    wait_until(lambda: b.current_state == pybreaker.STATE_HALF_OPEN, timeout=5,
               message="the breaker half-opening after its second opening")
    # The first timer fired about 0.15 s after the second opening and changed nothing.
    assert time.monotonic() - second_opened >= 0.29


def test_only_one_trial_call_goes_through_while_half_open():
    b = Breaker("unit-one-trial", fail_max=1, reset_timeout=0.01)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    time.sleep(0.02)
    entered, release = threading.Event(), threading.Event()

    def slow_trial():
        entered.set()
        release.wait(5)
        return "ok"

    t = threading.Thread(target=b.call, args=(slow_trial,))
    t.start()
    assert entered.wait(5)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(lambda: "second")
    release.set()
    t.join(5)
    assert b.current_state == pybreaker.STATE_CLOSED


def test_calls_through_one_breaker_run_in_parallel():
    b = Breaker("unit-parallel", fail_max=5)
    barrier = threading.Barrier(4, timeout=5)
    results = []

    def work():
        barrier.wait()  # passes only if four calls are inside the breaker at once
        return "done"

    threads = [threading.Thread(target=lambda: results.append(b.call(work))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["done"] * 4


def test_retries_stop_after_the_attempts_and_are_counted():
    calls = []
    policy = resilience.retrying("unit-dep", "read", attempts=3, base=0.001, sleep=lambda s: None)
    before = resilience.RETRIES.labels("unit-dep", "read")._value.get()

    def flaky():
        calls.append(1)
        raise Boom()

    with pytest.raises(Boom):
        resilience.call_with_retries(policy, flaky)
    assert len(calls) == 3
    assert resilience.RETRIES.labels("unit-dep", "read")._value.get() - before == 2


def test_no_retry_goes_into_an_open_breaker():
    calls = []
    policy = resilience.retrying("unit-dep", "open", attempts=5, sleep=lambda s: None)

    def refused():
        calls.append(1)
        raise pybreaker.CircuitBreakerError("open")

    with pytest.raises(pybreaker.CircuitBreakerError):
        resilience.call_with_retries(policy, refused)
    assert len(calls) == 1


def test_retries_stop_when_the_deadline_would_pass():
    calls = []
    policy = resilience.retrying("unit-dep", "deadline", attempts=50, base=10, cap=10,
                                 sleep=lambda s: None)
    token = resilience.start_deadline(None, budget=0.5)
    try:
        with pytest.raises(Boom):
            resilience.call_with_retries(policy, lambda: calls.append(1) or fail())
    finally:
        resilience.end_deadline(token)
    assert len(calls) < 50


def test_a_deadline_from_the_caller_bounds_every_timeout():
    header = str(int((time.time() + 0.2) * 1000))
    token = resilience.start_deadline(header, budget=5.0)
    try:
        assert resilience.timeout_within(2.0) <= 0.2
        assert int(resilience.deadline_headers()[resilience.DEADLINE_HEADER]) <= int(header) + 1
    finally:
        resilience.end_deadline(token)
    assert resilience.timeout_within(2.0) == 2.0  # no deadline outside a request


def test_a_passed_deadline_refuses_to_call_at_all():
    token = resilience.start_deadline(str(int((time.time() - 1) * 1000)), budget=None)
    try:
        with pytest.raises(DeadlineExceeded):
            resilience.timeout_within(1.0)
    finally:
        resilience.end_deadline(token)


# ------------------------------------------------------------- the process's breakers


def test_a_process_registry_gives_one_breaker_per_dependency():
    breakers = resilience.Breakers()
    first = breakers.get("unit-registry", fail_max=2, reset_timeout=60)
    assert breakers.get("unit-registry") is first
    assert (first.fail_max, first.reset_timeout) == (2, 60)
    assert list(breakers) == [first] and len(breakers) == 1


def test_a_name_asked_for_again_with_other_settings_is_refused():
    breakers = resilience.Breakers()
    first = breakers.get("unit-one-rule-set", fail_max=2, reset_timeout=60)
    assert breakers.get("unit-one-rule-set", fail_max=2, reset_timeout=60) is first
    with pytest.raises(ValueError, match="unit-one-rule-set"):
        breakers.get("unit-one-rule-set", fail_max=5, reset_timeout=60)
    with pytest.raises(ValueError):
        breakers.get("unit-one-rule-set", fail_max=2, reset_timeout=60, exclude=[KeyError])
    assert (first.fail_max, first.reset_timeout) == (2, 60) and len(breakers) == 1


def test_breakers_are_named_by_service_and_dependency():
    assert resilience.breaker_name("timeline", "redis") == "timeline.redis"


def test_two_registries_share_nothing():
    ours, theirs = resilience.Breakers(), resilience.Breakers()
    b = ours.get("unit-shared-name", fail_max=1, reset_timeout=60)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    assert ours.get("unit-shared-name").is_open
    assert not theirs.get("unit-shared-name", fail_max=1, reset_timeout=60).is_open


def test_the_module_keeps_no_breakers_of_its_own():
    kept = [name for name, value in vars(resilience).items()
            if not name.startswith("__") and value is not resilience.BREAKER_STATES
            and isinstance(value, (dict, list, set, resilience.Breakers, resilience.Breaker))]
    assert kept == []


def test_a_retry_predicate_narrows_the_errors_retried():
    calls = []

    def answer_once_then_outage():
        calls.append(1)
        raise Boom("refused" if len(calls) == 1 else "down")

    policy = resilience.retrying("unit-dep", "predicate", attempts=5, base=0, cap=0,
                                 on=(Boom,), when=lambda exc: str(exc) == "down",
                                 sleep=lambda s: None)
    with pytest.raises(Boom, match="refused"):
        resilience.call_with_retries(policy, answer_once_then_outage)
    assert len(calls) == 1  # "refused" is an answer: not retried

"""The switches a chaos experiment uses to turn a safeguard off on purpose."""

from __future__ import annotations

import pybreaker
import pytest

from common import config, resilience


def test_no_safeguard_is_off_unless_named(monkeypatch):
    monkeypatch.delenv("MURMUR_DISABLE_SAFEGUARDS", raising=False)
    assert config.disabled_safeguards() == frozenset()
    monkeypatch.setenv("MURMUR_DISABLE_SAFEGUARDS", "breakers, home-fallback")
    assert config.disabled_safeguards() == {"breakers", "home-fallback"}


def test_an_unknown_safeguard_name_is_refused(monkeypatch):
    monkeypatch.setenv("MURMUR_DISABLE_SAFEGUARDS", "brakes")
    with pytest.raises(ValueError, match="brakes"):
        config.disabled_safeguards()


def failing() -> None:
    raise ConnectionError("down")


def test_a_breaker_opens_after_its_failures(monkeypatch):
    monkeypatch.delenv("MURMUR_DISABLE_SAFEGUARDS", raising=False)
    breaker = resilience.Breaker("switch-test-on", fail_max=2, reset_timeout=60)
    for _ in range(2):
        with pytest.raises((ConnectionError, pybreaker.CircuitBreakerError)):
            breaker.call(failing)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(failing)


def test_with_breakers_off_every_call_goes_through(monkeypatch):
    monkeypatch.setenv("MURMUR_DISABLE_SAFEGUARDS", "breakers")
    breaker = resilience.Breaker("switch-test-off", fail_max=2, reset_timeout=60)
    for _ in range(10):
        with pytest.raises(ConnectionError):
            breaker.call(failing)
    assert not breaker.is_open

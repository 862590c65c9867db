"""How the timeline's adapters call a store: through its breaker, outages as domain errors.

One `Guard` per dependency (Cassandra, Redis, users). A call runs through the dependency's
circuit breaker (`common.resilience.Breaker`), optionally under a retry policy for
idempotent reads, and whatever says "the dependency cannot answer now" — a transient
driver error or the open breaker — leaves the adapter as `DependencyUnavailable`, so the
handlers can fall back or answer 503 without knowing any driver. Errors that are not
outages (a bad query, "not found") pass through unchanged and never trip the breaker.
"""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import tenacity

from common import resilience
from timeline.domain import DependencyUnavailable

T = TypeVar("T")


def transient_breaker(name: str, transient: tuple[type[BaseException], ...], *,
                      fail_max: int, reset_timeout: float) -> resilience.Breaker:
    """The process's breaker for `name`, counting only `transient` errors as failures.

    Any other error is an answer (the dependency is up); the request's own deadline
    running out before the call says nothing about the dependency.
    """
    return resilience.breaker(name, fail_max=fail_max, reset_timeout=reset_timeout,
                              exclude=[lambda exc: not isinstance(exc, transient)],
                              ignore=(resilience.DeadlineExceeded,))


class Guard:
    """Calls to one dependency: breaker, optional retries, outages as DependencyUnavailable."""

    def __init__(self, name: str, transient: tuple[type[BaseException], ...],
                 breaker: resilience.Breaker | None = None, *, read_attempts: int = 1,
                 retry_on: tuple[type[BaseException], ...] | None = None) -> None:
        self.name, self.transient, self.breaker = name, transient, breaker
        self.read_attempts = read_attempts
        self.retry_on = transient if retry_on is None else retry_on

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` once through the breaker."""
        return self._translated(lambda: self._through_breaker(fn, *args, **kwargs))

    def read(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an idempotent `fn`, retried on transient errors within the deadline."""
        if self.read_attempts <= 1:
            return self.call(fn, *args, **kwargs)
        policy = self.retry_policy(operation)
        return self._translated(lambda: resilience.call_with_retries(
            policy, self._through_breaker, fn, *args, **kwargs))

    def retry_policy(self, operation: str) -> tenacity.Retrying:
        """Full-jitter retries of `retry_on` errors, never into the open breaker."""
        return resilience.retrying(self.name, operation, attempts=self.read_attempts,
                                   base=0.02, cap=0.2, on=self.retry_on)

    def retry_after(self) -> int:
        """Seconds until the breaker lets a trial call through (1 when it is not open)."""
        left = self.breaker.time_to_trial() if self.breaker is not None else 0.0
        return max(1, math.ceil(left))

    def _through_breaker(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.breaker is None:
            return fn(*args, **kwargs)
        return self.breaker.call(fn, *args, **kwargs)

    def _translated(self, run: Callable[[], T]) -> T:
        try:
            return run()
        except resilience.CircuitBreakerError as exc:
            raise DependencyUnavailable(f"{self.name}: circuit breaker open",
                                        retry_after=self.retry_after()) from exc
        except self.transient as exc:
            raise DependencyUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc

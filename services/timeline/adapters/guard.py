"""How the timeline's adapters call a store: through its breaker, outages as domain errors.

One `Guard` per dependency (Cassandra, Redis, users). A call runs through the dependency's
circuit breaker (`common.resilience.Breaker`), optionally under a retry policy for
idempotent reads, and whatever says "the dependency cannot answer now" — an outage as
`common.outages` defines it for the store's kind, or the open breaker — leaves the adapter
as `DependencyUnavailable`, so the handlers can fall back or give up without knowing any
driver. Errors that are not outages (a bad query, a wrong command, "not found") pass
through unchanged and never trip the breaker.
"""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import tenacity

from common import outages, resilience
from timeline.domain.errors import DependencyUnavailable

T = TypeVar("T")

# What counts as an outage of a dependency: a kind of store (`common.outages`), or a test.
Outage = outages.Kind | Callable[[BaseException], bool]


def outage_test(outage: Outage) -> Callable[[BaseException], bool]:
    """`outage` as a test of an exception (a kind of store becomes its `is_outage`)."""
    if isinstance(outage, str):
        kind: outages.Kind = outage
        outages.exceptions(kind)  # an unknown kind fails here, not at the first error
        return lambda exc: outages.is_outage(kind, exc)
    if isinstance(outage, type) or not callable(outage):
        # A class is callable too, and calling it would make an exception: always "true".
        raise TypeError(f"an outage is a kind of store or a test of an exception, "
                        f"not {outage!r}")
    return outage


def outage_breaker(name: str, outage: Outage, *, fail_max: int,
                   reset_timeout: float) -> resilience.Breaker:
    """The process's breaker for `name`, counting only outages as failures.

    Any other error is an answer (the dependency is up); the request's own deadline
    running out before the call says nothing about the dependency.
    """
    is_outage = outage_test(outage)
    return resilience.Breaker(name, fail_max=fail_max, reset_timeout=reset_timeout,
                              exclude=[lambda exc: not is_outage(exc)],
                              ignore=(resilience.DeadlineExceeded,))


class Guard:
    """Calls to one dependency: breaker, optional retries, outages as DependencyUnavailable.

    `outage`: a kind of store (`"redis"`) or a test of an exception; `retry_on`: which
    outages an idempotent read is retried on (default: every one).
    """

    def __init__(self, name: str, outage: Outage, breaker: resilience.Breaker | None = None,
                 *, read_attempts: int = 1, retry_on: Outage | None = None) -> None:
        self.name, self.breaker = name, breaker
        self.is_outage = outage_test(outage)
        self.read_attempts = read_attempts
        self.retryable = self.is_outage if retry_on is None else outage_test(retry_on)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` once through the breaker."""
        return self._translated(lambda: self._through_breaker(fn, *args, **kwargs))

    def read(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an idempotent `fn`, retried on outages within the deadline."""
        if self.read_attempts <= 1:
            return self.call(fn, *args, **kwargs)
        policy = self.retry_policy(operation)
        return self._translated(lambda: resilience.call_with_retries(
            policy, self._through_breaker, fn, *args, **kwargs))

    def retry_policy(self, operation: str) -> tenacity.Retrying:
        """Full-jitter retries of the retryable outages, never into the open breaker."""
        return resilience.retrying(self.name, operation, attempts=self.read_attempts,
                                   base=0.02, cap=0.2, when=self.retryable)

    def retry_in(self) -> int:
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
                                        retry_in=self.retry_in()) from exc
        except Exception as exc:
            if not self.is_outage(exc):
                raise
            raise DependencyUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc

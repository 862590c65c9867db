"""Deadlines, retries and circuit breakers: how every Murmur process calls a dependency.

- **Deadlines.** A request carries one absolute deadline. The gateway sets it from its
  budget; every hop passes what is left downstream in `Murmur-Deadline` (unix ms) and
  bounds each of its own timeouts by it (`timeout_within`), so nobody waits past it.
- **Retries** (tenacity): only for idempotent operations, exponential backoff with full
  jitter, bounded by attempts *and* by the remaining deadline, never into an open breaker,
  each retry counted in `murmur_retries_total`.
- **Circuit breakers** (pybreaker's state machine): one per dependency, made when the
  process starts (by the process's bootstrap; none exists at import), named
  `<service>.<dependency>` (`breaker_name`), transitions logged and exported as
  `murmur_breaker_state`. An open breaker half-opens when its reset timeout
  has passed, not on the next call, so the state a worker reports is never stale.
  pybreaker's own `call` holds the breaker's lock for the whole guarded call (its issues #3
  and #55), which would serialise every thread of a process on one dependency; `Breaker`
  takes the lock only to read and update the state, never while the call runs.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, Callable, Iterable, Iterator, TypeVar

import pybreaker
import tenacity
from prometheus_client import Counter, Gauge

from common import config

log = logging.getLogger("murmur.resilience")
T = TypeVar("T")

DEADLINE_HEADER = "Murmur-Deadline"
_deadline: ContextVar[float | None] = ContextVar("murmur_deadline", default=None)  # monotonic

BREAKER_STATES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}
# Each worker has its own breakers: the highest state over the live workers, so a worker that
# has exited cannot hold the gauge at "open".
BREAKER_STATE = Gauge("murmur_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                      ["breaker"], multiprocess_mode="livemax")
BREAKER_TRANSITIONS = Counter("murmur_breaker_transitions_total", "Circuit breaker transitions",
                              ["breaker", "to"])
BREAKER_REJECTIONS = Counter("murmur_breaker_rejections_total",
                             "Calls refused at once because a breaker was open", ["breaker"])
RETRIES = Counter("murmur_retries_total", "Retries of idempotent calls", ["dependency", "operation"])
# Bulkheads: saturation of each dependency's bounded pool (in use / size). Per worker process,
# since each has its own pools: the busiest worker is the one that matters.
POOL_IN_USE = Gauge("murmur_pool_in_use", "Connections of a dependency's pool in use",
                    ["dependency"], multiprocess_mode="livemax")
POOL_SIZE = Gauge("murmur_pool_size", "Connections a dependency's pool holds at most",
                  ["dependency"], multiprocess_mode="livemax")


class DeadlineExceeded(Exception):
    """The request's deadline has passed: give up instead of calling anything."""


# ---------------------------------------------------------------------------- deadlines


def start_deadline(header_value: str | None, budget: float | None) -> Token:
    """Set this request's deadline from an incoming header, else from `budget` seconds."""
    deadline = None
    if header_value:
        try:
            deadline = time.monotonic() + (int(header_value) / 1000.0 - time.time())
        except ValueError:
            deadline = None
    if deadline is None and budget is not None:
        deadline = time.monotonic() + budget
    elif deadline is not None and budget is not None:
        deadline = min(deadline, time.monotonic() + budget)
    return _deadline.set(deadline)


def end_deadline(token: Token) -> None:
    """Forget the request's deadline (at the end of the request)."""
    _deadline.reset(token)


@contextmanager
def deadline(budget: float | None, header_value: str | None = None) -> Iterator[None]:
    """Run the block with a deadline (`start_deadline`'s rules), forgotten afterwards."""
    token = start_deadline(header_value, budget)
    try:
        yield
    finally:
        end_deadline(token)


def remaining() -> float | None:
    """Seconds left before the deadline (None: no deadline)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def require_time_left(margin: float) -> None:
    """Raise DeadlineExceeded unless the request's deadline is more than `margin` s away."""
    left = remaining()
    if left is not None and left <= margin:
        raise DeadlineExceeded(f"less than {margin}s of the request's deadline is left")


def timeout_within(timeout: float) -> float:
    """`timeout`, shortened to the time left; raises DeadlineExceeded when none is left."""
    left = remaining()
    if left is None:
        return timeout
    if left <= 0.001:
        raise DeadlineExceeded("the request's deadline has passed")
    return min(timeout, left)


def deadline_headers(wait: float | None = None) -> dict[str, str]:
    """The header that passes the remaining budget downstream (empty without a deadline);
    `wait`: how long the caller will wait for this answer, when that is shorter."""
    left = remaining()
    if wait is not None:
        left = wait if left is None else min(left, wait)
    if left is None:
        return {}
    return {DEADLINE_HEADER: str(int((time.time() + max(left, 0.0)) * 1000))}


# ------------------------------------------------------------------------------ retries


def _stop_at_deadline(retry_state: tenacity.RetryCallState) -> bool:
    left = remaining()
    upcoming = retry_state.upcoming_sleep or 0.0
    return left is not None and left <= upcoming


def retrying(dependency: str, operation: str, *, attempts: int = 3, base: float = 0.05,
             cap: float = 1.0, on: tuple[type[BaseException], ...] = (Exception,),
             when: Callable[[BaseException], bool] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
    """A tenacity policy for an idempotent call: full-jitter exponential backoff, at most
    `attempts` tries, never past the deadline, never into an open breaker.

    Errors of the classes `on` are retried, and of those only the ones `when` accepts
    (e.g. `lambda exc: outages.is_outage("redis", exc)`) when it is given."""

    def retryable(exc: BaseException) -> bool:
        return (isinstance(exc, on) and (when is None or when(exc))
                and not isinstance(exc, (pybreaker.CircuitBreakerError, DeadlineExceeded)))

    retries = RETRIES.labels(dependency, operation)  # exported at 0 before the first retry

    def count(_state: tenacity.RetryCallState) -> None:
        retries.inc()

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | _stop_at_deadline,
        wait=tenacity.wait_random_exponential(multiplier=base, max=cap),
        retry=tenacity.retry_if_exception(retryable),
        before_sleep=count,
        sleep=sleep,
        reraise=True,
    )


def call_with_retries(policy: tenacity.Retrying, fn: Callable[..., T], *args: Any,
                      **kwargs: Any) -> T:
    """Run `fn` under a retry policy made by `retrying`."""
    return policy(fn, *args, **kwargs)


# ----------------------------------------------------------------------------- breakers


class _Transitions(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        old = old_state.name if old_state else "none"
        BREAKER_STATE.labels(cb.name).set(BREAKER_STATES[new_state.name])
        BREAKER_TRANSITIONS.labels(cb.name, new_state.name).inc()
        level = logging.WARNING if new_state.name == pybreaker.STATE_OPEN else logging.INFO
        log.log(level, "breaker %s: %s -> %s", cb.name, old, new_state.name,
                extra={"fields": {"breaker": cb.name, "from": old, "to": new_state.name}})


class Breaker(pybreaker.CircuitBreaker):
    """pybreaker's breaker without its lock around the guarded call.

    The state is read and updated under the lock; the call itself runs outside it, so
    threads calling a healthy dependency run in parallel. An open breaker half-opens when
    its reset timeout has passed; while half-open, exactly one trial call goes through and
    the others fail fast until it has answered.
    """

    def __init__(self, name: str, *, fail_max: int = 5, reset_timeout: float = 10.0,
                 exclude: Iterable[type[BaseException] | Callable[[BaseException], bool]] = (),
                 ignore: Iterable[type[BaseException]] = (),
                 listeners: Iterable[pybreaker.CircuitBreakerListener] = ()) -> None:
        """`exclude`: errors that prove the dependency answered (they count as successes);
        `ignore`: errors that say nothing about it, e.g. the caller's own deadline running
        out (they count as neither, and a half-open breaker stays half-open)."""
        super().__init__(fail_max=fail_max, reset_timeout=reset_timeout, exclude=list(exclude),
                         listeners=[_Transitions(), *listeners], name=name)
        self._ignored = tuple(ignore)
        self._trial_in_flight = False
        # A chaos experiment's "breaker off" switch: every call goes through, none is counted.
        self._disabled = "breakers" in config.disabled_safeguards()
        BREAKER_STATE.labels(name).set(0)
        # The counters exist at 0 from the start, so "no rejection yet" is a zero on a
        # dashboard, not a missing series.
        BREAKER_REJECTIONS.labels(name)
        for state in BREAKER_STATES:
            BREAKER_TRANSITIONS.labels(name, state)

    def open(self) -> bool:
        """Open the circuit; it half-opens by itself once `reset_timeout` has passed."""
        with self._lock:
            throw = super().open()
            opened_at = self._state_storage.opened_at
        # On time, not on the next call (resilience4j's automatic transition): a worker that
        # gets no calls must not report "open" long after its dependency is back.
        timer = threading.Timer(self.reset_timeout, self._half_open_if_due, args=(opened_at,))
        timer.daemon = True
        timer.start()
        return throw

    def _half_open_if_due(self, opened_at: Any) -> None:
        with self._lock:
            # Not if the breaker has moved on, or opened again since (its own timer runs).
            if (self.state.name == pybreaker.STATE_OPEN
                    and self._state_storage.opened_at == opened_at):
                self.half_open()

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:  # type: ignore[override]
        """Run `func` if the breaker allows it; raises CircuitBreakerError when open."""
        if self._disabled:
            return func(*args, **kwargs)
        with self._lock:
            state = self.state
            if state.name == pybreaker.STATE_OPEN:
                opened_at = self._state_storage.opened_at
                if opened_at is not None and (time.time() - opened_at.timestamp()
                                              < self.reset_timeout):
                    BREAKER_REJECTIONS.labels(self.name).inc()
                    raise pybreaker.CircuitBreakerError(f"{self.name} breaker is open")
                self.half_open()
                state = self.state
            trial = state.name == pybreaker.STATE_HALF_OPEN
            if trial:
                if self._trial_in_flight:
                    BREAKER_REJECTIONS.labels(self.name).inc()
                    raise pybreaker.CircuitBreakerError(f"{self.name} breaker is half-open")
                self._trial_in_flight = True
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            with self._lock:
                if trial:
                    self._trial_in_flight = False
                # May raise CircuitBreakerError (the breaker just opened) or `exc` itself.
                if not isinstance(exc, self._ignored):
                    self.state._handle_error(exc, reraise=False)
            raise
        with self._lock:
            if trial:
                self._trial_in_flight = False
            self.state._handle_success()
        return result

    @property
    def is_open(self) -> bool:
        """True while calls are refused without being tried."""
        return self.current_state == pybreaker.STATE_OPEN

    def time_to_trial(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 unless open)."""
        with self._lock:
            opened_at = self._state_storage.opened_at
            if self.state.name != pybreaker.STATE_OPEN or opened_at is None:
                return 0.0
            return max(0.0, self.reset_timeout - (time.time() - opened_at.timestamp()))


def breaker_name(service: str, dependency: str) -> str:
    """The name of `service`'s breaker for `dependency` (`timeline.redis`).

    Breakers are named by who calls as well as what is called: the name labels the
    breaker's metrics and log lines, and two services' breakers for one kind of
    dependency (users' profile cache and timeline's Redis) must never read as one.
    """
    return f"{service}.{dependency}"


class Breakers:
    """The circuit breakers of one process: one per name, made on first use.

    Made when the process starts (its bootstrap) and handed to the adapters it wires, never
    at import: two services built in one test process do not share a breaker, and a
    process's metrics name each breaker once. A name stands for one dependency and one set
    of rules: asking for a known name with other settings is an error, not a quiet share
    of the first caller's breaker.
    """

    def __init__(self) -> None:
        self._made: dict[str, tuple[Breaker, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, **settings: Any) -> Breaker:
        """The breaker `name`, made with `settings` the first time; later calls either give
        no settings (a lookup) or the same ones. ValueError for different settings."""
        with self._lock:
            if name not in self._made:
                self._made[name] = (Breaker(name, **settings), settings)
            breaker, made_with = self._made[name]
            if settings and settings != made_with:
                raise ValueError(f"breaker {name!r} exists with other settings "
                                 f"({made_with} rather than {settings}): name each "
                                 "dependency and rule set apart")
            return breaker

    def __iter__(self) -> Iterator[Breaker]:
        with self._lock:
            return iter([breaker for breaker, _settings in self._made.values()])

    def __len__(self) -> int:
        return len(self._made)


CircuitBreakerError = pybreaker.CircuitBreakerError

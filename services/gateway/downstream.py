"""HTTP calls from the gateway to one downstream service.

One `Downstream` per service: a bounded urllib3 connection pool (the bulkhead), a circuit
breaker, retries for idempotent calls, connect/read timeouts bounded by the request's
deadline, the request id, the caller's identity and the remaining budget forwarded, and one
translation of failures: a downstream 4xx problem passes through unchanged, while anything
that leaves the call without an answer becomes 503 + Retry-After:

- a 5xx, a timeout or a failed connection: counts against the breaker, retried if idempotent;
- an open breaker: refused at once, without touching the network;
- the request's deadline passing, or no free pooled connection in time: neither counts
  against the breaker (the service is not shown to be failing) nor is retried.

urllib3 rather than requests: this is the gateway's hottest path (every API call makes one or
two downstream calls), and requests' per-call machinery costs more CPU than the call itself
needs; bodies are JSON in and out, which the json module handles directly.
"""

from __future__ import annotations

import json as jsonlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlencode

import urllib3
from prometheus_client import Histogram
from urllib3.exceptions import EmptyPoolError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeoutError

from common import logs, resilience
from common.metrics import POOL_WAITING
from common.problems import Problem, unavailable
from common.resilience import Breaker, CircuitBreakerError, DeadlineExceeded

from gateway.config import DownstreamConfig

log = logging.getLogger("murmur.gateway.downstream")

CALLS = Histogram("murmur_downstream_request_duration_seconds",
                  "Calls from the gateway to a downstream service",
                  ["downstream", "method", "outcome"],
                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

# Headers of a downstream answer the gateway hands on to its client.
PASSED_HEADERS = ("ETag", "Retry-After", "Murmur-Degraded")

# Methods whose calls may be repeated: repeating one changes nothing more than the first did.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass
class Reply:
    """A successful (2xx) downstream answer; `headers` is case-insensitive."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def passed_headers(self) -> dict[str, str]:
        """The downstream headers a client should see."""
        return {name: self.headers[name] for name in PASSED_HEADERS if name in self.headers}


class Unanswered(Exception):
    """A call that got no usable answer (5xx, timeout, failed connection): the service
    looks unwell, so this counts against its breaker and an idempotent call is retried."""


class Saturated(Exception):
    """No pooled connection came free in time: this process is busy, the service may be fine."""


def _failure(exc: HTTPError) -> tuple[str, str]:
    """The metric outcome and log reason of a call that got no answer."""
    # urllib3 derives a refused connection (NewConnectionError) from its connect timeout.
    if isinstance(exc, HTTPTimeoutError) and not isinstance(exc, NewConnectionError):
        return "timeout", "did not answer in time"
    return "error", f"could not be reached ({type(exc).__name__})"


class _PoolGauges:
    """Saturation of one bounded pool, from the calls in flight through it.

    urllib3 does not report how many of its connections are checked out, but with a
    blocking pool the first `size` calls in flight hold one each and the rest wait.
    """

    def __init__(self, dependency: str, size: int) -> None:
        self.size = size
        self.in_flight = 0
        self._lock = threading.Lock()
        self._in_use = resilience.POOL_IN_USE.labels(dependency)
        self._waiting = POOL_WAITING.labels(dependency)
        resilience.POOL_SIZE.labels(dependency).set(size)

    def enter(self) -> None:
        """A call starts: it takes a connection, or waits for one."""
        self._count(+1)

    def leave(self) -> None:
        """A call ends: its connection (if it had one) is back in the pool."""
        self._count(-1)

    def _count(self, change: int) -> None:
        with self._lock:
            self.in_flight += change
            self._in_use.set(min(self.in_flight, self.size))
            self._waiting.set(max(0, self.in_flight - self.size))


class Downstream:
    """A client of one downstream service."""

    def __init__(self, cfg: DownstreamConfig, retry_after: int = 1) -> None:
        self.cfg = cfg
        self.retry_after = retry_after
        url = urllib3.util.parse_url(cfg.base_url)
        self.prefix = (url.path or "").rstrip("/")
        # block=True is the bulkhead: at most pool_size sockets to this service, and a caller
        # beyond that waits a bounded time (its connect timeout: waiting for a free connection
        # is part of getting connected) instead of opening one more. No urllib3 retries:
        # retrying is the policy below, made for idempotent calls only.
        self.pool = urllib3.connection_from_url(
            cfg.base_url, maxsize=cfg.pool_size, block=True, retries=False,
            timeout=urllib3.Timeout(connect=cfg.connect_timeout, read=cfg.read_timeout))
        self._pool_gauges = _PoolGauges(cfg.name, cfg.pool_size)
        # A 4xx is the service answering: it counts as a success. Our own deadline or our
        # own full pool says nothing about the service.
        self.breaker = Breaker(cfg.name, fail_max=cfg.fail_max, reset_timeout=cfg.reset_timeout,
                               exclude=[Problem], ignore=[DeadlineExceeded, Saturated])
        # Built once and shared by every thread (tenacity keeps per-call state thread-local).
        self._retries = {method: resilience.retrying(
            cfg.name, method, attempts=cfg.retry_attempts, base=cfg.retry_base,
            cap=cfg.retry_cap, on=(Unanswered,)) for method in ("GET", "PUT", "DELETE", "POST")}

    def call(self, method: str, path: str, *, user_id: str | None = None,
             params: Mapping[str, Any] | None = None, json: Any = None,
             headers: Mapping[str, str | None] | None = None,
             idempotent: bool | None = None) -> Reply:
        """Make one call, retried if `idempotent` (by default: if the method is); returns a
        2xx Reply or raises the Problem to answer with."""
        sent = {"Accept": "application/json"}
        request_id = logs.request_id_var.get()
        if request_id:
            sent["X-Request-ID"] = request_id
        if user_id is not None:
            sent["X-User-Id"] = user_id
        sent.update({k: v for k, v in (headers or {}).items() if v is not None})
        body = None
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            sent["Content-Type"] = "application/json"
        target = self.prefix + path
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        if query:
            target += "?" + query
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        policy = self._retries.get(method) if idempotent else None
        try:
            if policy is None:
                resp = self._attempt(method, target, body, sent)
            else:
                resp = resilience.call_with_retries(policy, self._attempt, method, target, body,
                                                    sent)
        except CircuitBreakerError:
            raise self._refused() from None
        except DeadlineExceeded:
            raise self._out_of_time(method, path) from None
        except (Unanswered, Saturated) as exc:
            raise self._down(method, path, str(exc)) from None
        return Reply(resp.status, jsonlib.loads(resp.data) if resp.data else None, resp.headers)

    def _attempt(self, method: str, target: str, body: bytes | None,
                 headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """One try through the breaker, with timeouts and budget cut to what is left."""
        # Raises DeadlineExceeded, before anything is sent, once no time is left.
        connect = resilience.timeout_within(self.cfg.connect_timeout)
        read = resilience.timeout_within(self.cfg.read_timeout)
        cut_short = connect < self.cfg.connect_timeout or read < self.cfg.read_timeout
        headers = {**headers, **resilience.deadline_headers()}
        return self.breaker.call(self._send, method, target, body, headers,
                                 urllib3.Timeout(connect=connect, read=read), cut_short)

    def _send(self, method: str, target: str, body: bytes | None, headers: dict[str, str],
              timeout: urllib3.Timeout, cut_short: bool) -> urllib3.BaseHTTPResponse:
        started = time.perf_counter()
        outcome = "error"
        self._pool_gauges.enter()
        try:
            resp = self.pool.urlopen(method, target, body=body, headers=headers, redirect=False,
                                     timeout=timeout, pool_timeout=timeout.connect_timeout,
                                     preload_content=True)
            outcome = str(resp.status)
        except EmptyPoolError:
            outcome = "saturated"
            raise Saturated("had no free connection in time") from None
        except HTTPError as exc:
            outcome, why = _failure(exc)
            if outcome == "timeout" and cut_short:
                raise DeadlineExceeded(f"the request's deadline passed: {why}") from None
            raise Unanswered(why) from None
        finally:
            self._pool_gauges.leave()
            CALLS.labels(self.cfg.name, method, outcome).observe(time.perf_counter() - started)
        if resp.status == 503 and _deliberate(resp):
            # The service answered on purpose: its own dependency is down and it said when
            # to come back. It is healthy, so this neither trips its breaker nor is retried.
            raise self._passed_problem(resp)
        if resp.status >= 500:
            raise Unanswered(f"answered {resp.status}")
        if resp.status >= 400:
            raise self._passed_problem(resp)
        return resp

    def _refused(self) -> Problem:
        # Come back when the breaker will let a trial call through.
        wait = max(self.retry_after, math.ceil(self.breaker.time_to_trial()))
        return unavailable(f"The {self.cfg.name} service is unavailable.", wait)

    def _out_of_time(self, method: str, path: str) -> Problem:
        log.info("%s %s ran out of time", self.cfg.name, method, extra={"fields": {
            "downstream": self.cfg.name, "path": path}})
        return unavailable(f"The {self.cfg.name} service did not answer within the request's "
                           "time budget.", self.retry_after)

    def _down(self, method: str, path: str, why: str) -> Problem:
        log.warning("%s %s %s", self.cfg.name, method, why, extra={"fields": {
            "downstream": self.cfg.name, "path": path}})
        return unavailable(f"The {self.cfg.name} service is unavailable.", self.retry_after)

    @staticmethod
    def _passed_problem(resp: urllib3.BaseHTTPResponse) -> Problem:
        try:
            body = jsonlib.loads(resp.data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        errors = body.get("errors")
        return Problem(
            resp.status,
            str(body.get("detail") or ""),
            title=body.get("title") or None,
            type_=str(body.get("type") or "about:blank"),
            errors=errors if isinstance(errors, list) else None,
            headers={k: resp.headers[k] for k in PASSED_HEADERS if k in resp.headers},
        )

    def close(self) -> None:
        """Close pooled connections."""
        self.pool.close()


def _deliberate(resp: urllib3.BaseHTTPResponse) -> bool:
    """A problem+json answer with Retry-After: a decision of the service, not a failure."""
    return ("Retry-After" in resp.headers
            and resp.headers.get("Content-Type", "").startswith("application/problem+json"))

"""The one way a Murmur process calls another Murmur service over HTTP.

One `HttpClient` per dependency and process, built from that dependency's `PeerConfig`:

- **A bounded pool** (the bulkhead): at most `pool_size` sockets to the peer. A call beyond
  that waits for a free connection at most its connect timeout (waiting for a connection is
  part of getting connected), then fails `Saturated` instead of opening one more.
- **The request's deadline** (`common.resilience`): no call starts once it has passed, each
  timeout is cut to the time left, and the time left travels on in `Murmur-Deadline`.
- **A breaker** (`common.resilience.Breaker`) that counts the peer's failures only: a failed
  or refused connection, a timeout, a 5xx that is not a deliberate answer. A 4xx, a
  deliberate 503 (problem+json with `Retry-After`: the peer is healthy and says its own
  dependency is down) and an answer that is not JSON all prove the peer answered; the
  caller's deadline running out and the caller's own pool being full say nothing about it.
- **Retries for idempotent calls only**: GET, HEAD, OPTIONS, PUT and DELETE, or a call the
  caller marks idempotent (a POST carrying an Idempotency-Key, a read that POSTs its ids).
  Only a try that got no answer (`Unanswered`) is tried again, with full-jitter backoff,
  at most `retry_attempts` tries in all, never past the deadline, never into an open breaker.
- **One error taxonomy** (plain exceptions; each service maps them at its own edge):

      PeerError
      ├── PeerUnavailable    no answer: try again later
      │   ├── Unanswered     connection failed, timed out, or a 5xx (counted, retried)
      │   ├── BreakerOpen    refused at once, the network untouched (`retry_after`)
      │   ├── OutOfTime      the request's deadline passed before or during the call
      │   └── Saturated      no pooled connection came free in time
      ├── Rejected           the peer answered no: a 4xx, or a deliberate 503/429
      └── BadAnswer          a 2xx that is not the JSON the caller expects (never retried)

  Every call is timed in `murmur_downstream_request_duration_seconds` by outcome (the
  status, `timeout`, `error` or `saturated`); the pool's use is exported as
  `murmur_pool_in_use`, `murmur_pool_size` and `murmur_pool_waiting`.

urllib3 rather than requests: the gateway makes one such call per API request, and requests'
per-call machinery costs more CPU than the call itself needs; bodies are JSON in and out.
"""

from __future__ import annotations

import json as jsonlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlencode

import urllib3
from prometheus_client import Histogram
from urllib3.exceptions import EmptyPoolError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeoutError

from common import logs, resilience
from common.config import PeerConfig
from common.metrics import POOL_WAITING
from common.resilience import Breaker, CircuitBreakerError, DeadlineExceeded

log = logging.getLogger("murmur.client")

CALLS = Histogram("murmur_downstream_request_duration_seconds",
                  "Calls from a Murmur process to another Murmur service",
                  ["downstream", "method", "outcome"],
                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

# Methods whose calls may be repeated: repeating one changes nothing more than the first did.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


# --------------------------------------------------------------------------- errors


class PeerError(Exception):
    """A call to `peer` that did not end in a usable 2xx answer."""

    def __init__(self, peer: str, message: str) -> None:
        super().__init__(f"{peer}: {message}")
        self.peer = peer


class PeerUnavailable(PeerError):
    """No answer came: the caller may try again later (`retry_after` seconds, if known)."""

    retry_after: float | None = None


class Unanswered(PeerUnavailable):
    """The connection failed or timed out, or the peer answered a 5xx: it looks unwell.
    Counts against its breaker; an idempotent call is tried again."""


class BreakerOpen(PeerUnavailable):
    """The peer's breaker is open: refused without touching the network."""

    def __init__(self, peer: str, retry_after: float) -> None:
        super().__init__(peer, "breaker is open")
        self.retry_after = retry_after


class OutOfTime(PeerUnavailable):
    """The request's deadline passed before or during the call (not the peer's fault)."""


class Saturated(PeerUnavailable):
    """No pooled connection came free in time: this process is busy, the peer may be fine."""


class Rejected(PeerError):
    """The peer answered no: a 4xx, or a deliberate 503/429 (problem+json, Retry-After).

    `problem` is the answer's problem+json body as a dict (empty if it had none) and
    `headers` the answer's headers (case-insensitive).
    """

    def __init__(self, peer: str, status: int, problem: dict[str, Any],
                 headers: Mapping[str, str]) -> None:
        super().__init__(peer, f"answered {status} {problem.get('detail') or ''}".rstrip())
        self.status, self.problem, self.headers = status, problem, headers

    @property
    def transient(self) -> bool:
        """Whether the peer asks to be asked again later (503 or 429) rather than never."""
        return self.status in (429, 503)


class BadAnswer(PeerError):
    """The peer answered 2xx, but not with the JSON the caller expects. Asking again would
    most likely get the same answer, so it is never retried (nor counted by the breaker)."""


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Reply:
    """A 2xx answer: its status, its JSON body (None if empty) and its headers."""

    peer: str
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def object(self) -> dict[str, Any]:
        """The body as a JSON object; BadAnswer if it is anything else."""
        if not isinstance(self.body, dict):
            raise BadAnswer(self.peer, f"answered {type(self.body).__name__}, not an object")
        return self.body


# ---------------------------------------------------------------------------- client


def peer_breaker(name: str, *, fail_max: int = 5, reset_timeout: float = 5.0) -> Breaker:
    """A breaker for peer `name` that counts only what `HttpClient` calls the peer's failures."""
    return Breaker(name, fail_max=fail_max, reset_timeout=reset_timeout,
                   # The peer answered: a success, whatever it said.
                   exclude=[Rejected, BadAnswer],
                   # Our own deadline or our own full pool prove nothing either way.
                   ignore=[OutOfTime, Saturated, DeadlineExceeded])


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


def _failure(exc: HTTPError) -> tuple[str, str]:
    """The metric outcome and log reason of a try that got no answer."""
    # urllib3 derives a refused connection (NewConnectionError) from its connect timeout.
    if isinstance(exc, HTTPTimeoutError) and not isinstance(exc, NewConnectionError):
        return "timeout", "did not answer in time"
    return "error", f"could not be reached ({type(exc).__name__})"


def _deliberate(resp: urllib3.BaseHTTPResponse) -> bool:
    """A problem+json answer with Retry-After: a decision of the peer, not a failure."""
    return ("Retry-After" in resp.headers
            and resp.headers.get("Content-Type", "").startswith("application/problem+json"))


def _problem(data: bytes) -> dict[str, Any]:
    try:
        body = jsonlib.loads(data) if data else None
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


class HttpClient:
    """A client of one peer service; thread-safe, one per peer and process.

    Its breaker is `breaker`, or one of its own named `<caller>.<peer>` (the calling
    service and the peer's name, `gateway.users`), so that each service's view of a peer
    has its own name in metrics and logs.
    """

    def __init__(self, peer: PeerConfig, *, caller: str | None = None,
                 breaker: Breaker | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.peer = peer
        self.name = peer.name
        url = urllib3.util.parse_url(peer.base_url)
        self.prefix = (url.path or "").rstrip("/")
        # block=True is the bulkhead; no urllib3 retries: retrying is the policy below.
        self.pool = urllib3.connection_from_url(
            peer.base_url, maxsize=peer.pool_size, block=True, retries=False,
            timeout=urllib3.Timeout(connect=peer.connect_timeout, read=peer.read_timeout))
        self._gauges = _PoolGauges(peer.name, peer.pool_size)
        self.breaker = breaker if breaker is not None else peer_breaker(
            resilience.breaker_name(caller, peer.name) if caller else peer.name,
            fail_max=peer.fail_max, reset_timeout=peer.reset_timeout)
        # Built once and shared by every thread (tenacity keeps per-call state apart).
        self._retries = {method: resilience.retrying(
            peer.name, method, attempts=peer.retry_attempts, base=peer.retry_base,
            cap=peer.retry_cap, on=(Unanswered,), sleep=sleep)
            for method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH")}

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, headers: Mapping[str, str | None] | None = None,
             idempotent: bool | None = None) -> Reply:
        """Make one call (retried if `idempotent`; by default if the method is) and return
        its 2xx Reply; raises a PeerError otherwise. A header whose value is None is left out."""
        sent = {"Accept": "application/json"}
        request_id = logs.request_id_var.get()
        if request_id:
            sent["X-Request-ID"] = request_id
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
                return self._attempt(method, target, body, sent)
            return resilience.call_with_retries(policy, self._attempt, method, target, body, sent)
        except CircuitBreakerError:
            raise BreakerOpen(self.name, self.breaker.time_to_trial()) from None
        except DeadlineExceeded:
            log.info("%s %s ran out of time", self.name, method,
                     extra={"fields": {"downstream": self.name, "path": path}})
            raise OutOfTime(self.name, "the request's deadline passed") from None
        except OutOfTime:
            log.info("%s %s ran out of time", self.name, method,
                     extra={"fields": {"downstream": self.name, "path": path}})
            raise
        except (Unanswered, Saturated) as exc:
            log.warning("%s %s %s", self.name, method, str(exc).partition(": ")[2],
                        extra={"fields": {"downstream": self.name, "path": path}})
            raise

    def get_object(self, path: str, *, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        """GET a JSON object (BadAnswer if the peer answers anything else)."""
        return self.call("GET", path, params=params, headers=headers).object()

    def _attempt(self, method: str, target: str, body: bytes | None,
                 headers: dict[str, str]) -> Reply:
        """One try through the breaker, with timeouts and budget cut to what is left."""
        # Raises DeadlineExceeded, before anything is sent, once no time is left.
        connect = resilience.timeout_within(self.peer.connect_timeout)
        read = resilience.timeout_within(self.peer.read_timeout)
        cut_short = connect < self.peer.connect_timeout or read < self.peer.read_timeout
        # The peer's deadline is when this caller stops waiting for it, so the peer does not
        # finish (and commit) work whose answer nobody will read.
        headers = {**headers, **resilience.deadline_headers(read)}
        return self.breaker.call(self._send, method, target, body, headers,
                                 urllib3.Timeout(connect=connect, read=read), cut_short)

    def _send(self, method: str, target: str, body: bytes | None, headers: dict[str, str],
              timeout: urllib3.Timeout, cut_short: bool) -> Reply:
        started = time.perf_counter()
        outcome = "error"
        self._gauges.enter()
        try:
            resp = self.pool.urlopen(method, target, body=body, headers=headers, redirect=False,
                                     timeout=timeout, pool_timeout=timeout.connect_timeout,
                                     preload_content=True)
            outcome = str(resp.status)
        except EmptyPoolError:
            outcome = "saturated"
            raise Saturated(self.name, "had no free connection in time") from None
        except HTTPError as exc:
            outcome, why = _failure(exc)
            if outcome == "timeout" and cut_short:
                raise OutOfTime(self.name, f"the request's deadline passed: {why}") from None
            raise Unanswered(self.name, why) from None
        finally:
            self._gauges.leave()
            CALLS.labels(self.name, method, outcome).observe(time.perf_counter() - started)
        if resp.status >= 500 and not (resp.status == 503 and _deliberate(resp)):
            raise Unanswered(self.name, f"answered {resp.status}")
        if resp.status >= 400:
            # A 4xx, or a deliberate 503: the peer is healthy and has answered.
            raise Rejected(self.name, resp.status, _problem(resp.data), resp.headers)
        try:
            parsed = jsonlib.loads(resp.data) if resp.data else None
        except ValueError:
            raise BadAnswer(self.name, f"answered {resp.status} with a body that is not JSON "
                                       f"({resp.headers.get('Content-Type', 'no type')})") from None
        return Reply(self.name, resp.status, parsed, resp.headers)

    def close(self) -> None:
        """Close the pooled connections."""
        self.pool.close()

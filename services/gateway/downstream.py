"""HTTP calls from the gateway to one downstream service.

One `Downstream` per service: a bounded urllib3 connection pool, explicit connect/read
timeouts, the request id and the caller's identity forwarded, and one translation of failures:
a downstream 4xx problem passes through unchanged, while a 5xx, a timeout, a refused connection
or a pool with no free connection becomes 503 + Retry-After. Nothing here retries: retries and
circuit breakers belong around `Downstream.call`, so every call site gets them at once.

urllib3 rather than requests: this is the gateway's hottest path (every API call makes one or
two downstream calls), and requests' per-call machinery costs more CPU than the call itself
needs; bodies are JSON in and out, which the json module handles directly.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlencode

import urllib3
from prometheus_client import Histogram
from urllib3.exceptions import EmptyPoolError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeoutError

from common import logs
from common.problems import Problem, unavailable

from gateway.config import DownstreamConfig

log = logging.getLogger("murmur.gateway.downstream")

CALLS = Histogram("murmur_downstream_request_duration_seconds",
                  "Calls from the gateway to a downstream service",
                  ["downstream", "method", "outcome"],
                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

# Headers of a downstream answer the gateway hands on to its client.
PASSED_HEADERS = ("ETag", "Retry-After", "Murmur-Degraded")


@dataclass
class Reply:
    """A successful (2xx) downstream answer; `headers` is case-insensitive."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def passed_headers(self) -> dict[str, str]:
        """The downstream headers a client should see."""
        return {name: self.headers[name] for name in PASSED_HEADERS if name in self.headers}


def _failure(exc: HTTPError) -> tuple[str, str]:
    """The metric outcome and log reason of a call that got no answer."""
    if isinstance(exc, EmptyPoolError):
        return "error", "had no free connection in time"
    # urllib3 derives a refused connection (NewConnectionError) from its connect timeout.
    if isinstance(exc, HTTPTimeoutError) and not isinstance(exc, NewConnectionError):
        return "timeout", "did not answer in time"
    return "error", f"could not be reached ({type(exc).__name__})"


class Downstream:
    """A client of one downstream service."""

    def __init__(self, cfg: DownstreamConfig, retry_after: int = 1) -> None:
        self.cfg = cfg
        self.retry_after = retry_after
        url = urllib3.util.parse_url(cfg.base_url)
        self.prefix = (url.path or "").rstrip("/")
        # Waiting for a free connection is part of getting connected, so it shares that budget.
        self.pool_timeout = cfg.connect_timeout
        # block=True is the bulkhead: at most pool_size sockets to this service, and a caller
        # beyond that waits a bounded time instead of opening one more. No urllib3 retries:
        # retrying is a policy decision made around `call`.
        self.pool = urllib3.connection_from_url(
            cfg.base_url, maxsize=cfg.pool_size, block=True, retries=False,
            timeout=urllib3.Timeout(connect=cfg.connect_timeout, read=cfg.read_timeout))

    def call(self, method: str, path: str, *, user_id: str | None = None,
             params: Mapping[str, Any] | None = None, json: Any = None,
             headers: Mapping[str, str | None] | None = None) -> Reply:
        """Make one call; returns a 2xx Reply or raises the Problem to answer with."""
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
        started = time.perf_counter()
        outcome = "error"
        try:
            resp = self.pool.urlopen(method, target, body=body, headers=sent, redirect=False,
                                     pool_timeout=self.pool_timeout, preload_content=True)
            outcome = str(resp.status)
        except HTTPError as exc:
            outcome, why = _failure(exc)
            raise self._down(method, path, why) from None
        finally:
            CALLS.labels(self.cfg.name, method, outcome).observe(time.perf_counter() - started)
        if resp.status >= 500:
            raise self._down(method, path, f"answered {resp.status}")
        if resp.status >= 400:
            raise self._passed_problem(resp)
        return Reply(resp.status, jsonlib.loads(resp.data) if resp.data else None, resp.headers)

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

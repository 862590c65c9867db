"""HTTP calls from the gateway to one downstream service.

One `Downstream` per service: a pooled `requests.Session`, explicit connect/read timeouts,
the request id and the caller's identity forwarded, and one translation of failures:
a downstream 4xx problem passes through unchanged, while a 5xx, a timeout or a refused
connection becomes 503 + Retry-After. Retries and circuit breakers wrap `Downstream.call`,
so every call site gets them at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import requests
from prometheus_client import Histogram
from requests.adapters import HTTPAdapter

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
    """A successful (2xx) downstream answer."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def passed_headers(self) -> dict[str, str]:
        """The downstream headers a client should see."""
        return {name: self.headers[name] for name in PASSED_HEADERS if name in self.headers}


class Downstream:
    """A client of one downstream service."""

    def __init__(self, cfg: DownstreamConfig, retry_after: int = 1,
                 session: requests.Session | None = None) -> None:
        self.cfg = cfg
        self.retry_after = retry_after
        self.timeout = (cfg.connect_timeout, cfg.read_timeout)
        self.session = session or self._session(cfg.pool_size)

    @staticmethod
    def _session(pool_size: int) -> requests.Session:
        session = requests.Session()
        # No urllib3 retries here: retrying is a policy decision made above this layer.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

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
        query = {k: v for k, v in (params or {}).items() if v is not None}
        started = time.perf_counter()
        outcome = "error"
        try:
            resp = self.session.request(method, self.cfg.base_url + path, params=query,
                                        json=json, headers=sent, timeout=self.timeout,
                                        allow_redirects=False)
            outcome = str(resp.status_code)
        except requests.Timeout:
            outcome = "timeout"
            raise self._down(method, path, "did not answer in time") from None
        except requests.RequestException as exc:
            raise self._down(method, path, f"could not be reached ({type(exc).__name__})") from None
        finally:
            CALLS.labels(self.cfg.name, method, outcome).observe(time.perf_counter() - started)
        if resp.status_code >= 500:
            raise self._down(method, path, f"answered {resp.status_code}")
        if resp.status_code >= 400:
            raise self._passed_problem(resp)
        body = resp.json() if resp.content else None
        return Reply(resp.status_code, body, resp.headers)

    def _down(self, method: str, path: str, why: str) -> Problem:
        log.warning("%s %s %s", self.cfg.name, method, why, extra={"fields": {
            "downstream": self.cfg.name, "path": path}})
        return unavailable(f"The {self.cfg.name} service is unavailable.", self.retry_after)

    def _passed_problem(self, resp: requests.Response) -> Problem:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        errors = body.get("errors")
        return Problem(
            resp.status_code,
            str(body.get("detail") or ""),
            title=body.get("title") or None,
            type_=str(body.get("type") or "about:blank"),
            errors=errors if isinstance(errors, list) else None,
            headers={k: resp.headers[k] for k in PASSED_HEADERS if k in resp.headers},
        )

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

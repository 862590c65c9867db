"""JSON over HTTP to the other services: timeouts, a breaker, and fan-out's error classes."""

from __future__ import annotations

from typing import Any

import requests

from common import resilience
from fanout.domain import Refused, Unavailable


def breaker(name: str, *, fail_max: int = 5, reset_timeout: float = 5.0) -> resilience.Breaker:
    """The process's breaker for service `name`; only outages (Unavailable) count."""
    return resilience.breaker(name, fail_max=fail_max, reset_timeout=reset_timeout,
                              exclude=[lambda exc: not isinstance(exc, Unavailable)])


def get_json(session: requests.Session, url: str, params: dict[str, Any],
             timeout: tuple[float, float],
             guard: resilience.Breaker | None = None) -> dict[str, Any]:
    """GET `url` and return its JSON object; Unavailable for outages, Refused for 4xx.

    With a breaker, outages count towards opening it, and while it is open the call
    fails at once with Unavailable: the worker pauses the partition as for any outage.
    """

    def fetch() -> requests.Response:
        try:
            resp = session.get(url, params=params, timeout=timeout)
        except requests.RequestException as exc:  # connection refused/reset, timeouts
            raise Unavailable(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise Unavailable(f"GET {url}: {resp.status_code}")
        return resp

    try:
        resp = guard.call(fetch) if guard is not None else fetch()
    except resilience.CircuitBreakerError as exc:
        raise Unavailable(f"GET {url}: {exc}") from exc
    if resp.status_code >= 400:
        raise Refused(f"GET {url}: {resp.status_code} {resp.text[:200]}")
    try:
        body = resp.json()
    except ValueError as exc:
        # A service that answers garbage is broken, not the event: wait for it to recover.
        raise Unavailable(f"GET {url}: answer is not JSON") from exc
    if not isinstance(body, dict):
        raise Unavailable(f"GET {url}: answer is not a JSON object")
    return body

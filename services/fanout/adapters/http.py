"""JSON over HTTP to the other services, with timeouts and fan-out's error classes."""

from __future__ import annotations

from typing import Any

import requests

from fanout.domain import Refused, Unavailable


def get_json(session: requests.Session, url: str, params: dict[str, Any],
             timeout: tuple[float, float]) -> dict[str, Any]:
    """GET `url` and return its JSON object; Unavailable for outages, Refused for 4xx."""
    try:
        resp = session.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:  # connection refused/reset, timeouts
        raise Unavailable(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    if resp.status_code == 429 or resp.status_code >= 500:
        raise Unavailable(f"GET {url}: {resp.status_code}")
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


def session(pool_size: int = 4) -> requests.Session:
    """A keep-alive session with a small connection pool (a bulkhead per dependency)."""
    s = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s

"""Clients that reach nginx from an address of their own on the loopback network.

Every 127.x.y.z address is this machine, so a test can be "another client" to the edge's
per-address limits and to users' per-address sign-in throttle without touching the
buckets of the tests that run after it.
"""

from __future__ import annotations

import itertools
import os

import requests
from requests.adapters import HTTPAdapter

# A block per test process, so that reruns within a throttle window start clean.
_ADDRESSES = itertools.count(10 + os.getpid() % 200 * 1000)


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str, **kwargs) -> None:
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def fresh_address() -> str:
    """A loopback address no other client of this test run uses."""
    n = next(_ADDRESSES)
    return f"127.{(n >> 16) % 200 + 20}.{(n >> 8) & 255}.{n & 255 or 1}"


def session_from(address: str, pool: int = 16) -> requests.Session:
    """A requests session whose connections come from `address`."""
    http = requests.Session()
    adapter = _FromAddress(address, pool_connections=pool, pool_maxsize=pool)
    http.mount("http://", adapter)
    return http

"""The one way a Murmur service builds a `requests` session for another service."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


def service_session(pool_size: int) -> requests.Session:
    """A keep-alive session with a bounded pool (the bulkhead towards one dependency).

    No urllib3 retries (retrying is a policy decision made above this layer), and no
    proxy variables or ~/.netrc lookups on every request: the peers are internal.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

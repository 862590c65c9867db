"""A small client of the public API (through nginx) and of the services' probes, for the
store and service fault tests: sign up, follow, post, read a home timeline, read metrics.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

import requests
from prometheus_client.parser import text_string_to_metric_families

from common import config
from conftest import wait_until

API = f"http://127.0.0.1:{config.profile().http_port}/api/v1"
PASSWORD = "fault-test-password"
DEGRADED = "Murmur-Degraded"
# The services whose breakers requests through nginx move. Fanout's move with Kafka messages.
SERVING = ("gateway", "gateway-2", "users", "timeline")


def service_url(name: str) -> str:
    """Base URL of a test-profile service by its port key (e.g. 'timeline', 'fanout')."""
    return f"http://127.0.0.1:{config.SERVICE_PORTS[name] + config.profile().port_offset}"


@dataclass(frozen=True)
class Member:
    """A signed-up user with a session."""

    id: str
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """The public API as a client sees it; every call has a timeout."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def sign_up(self, prefix: str) -> Member:
        """A new account with a session."""
        username = f"{prefix}_{uuid.uuid4().hex[:10]}"
        body = {"username": username, "password": PASSWORD}
        created = self.http.post(f"{API}/users", json=body, timeout=10)
        assert created.status_code == 201, created.text
        session = self.http.post(f"{API}/sessions", json=body, timeout=10)
        assert session.status_code == 200, session.text
        return Member(created.json()["id"], username, session.json()["access_token"])

    def follow(self, follower: Member, followee: Member) -> None:
        resp = self.http.put(f"{API}/users/me/following/{followee.username}",
                             headers=follower.auth, timeout=10)
        assert resp.status_code == 204, resp.text

    def post(self, author: Member, text: str | None = None,
             timeout: float = 10) -> requests.Response:
        """POST /tweets; the answer as it came."""
        return self.http.post(f"{API}/tweets", json={"text": text or f"t {uuid.uuid4().hex[:8]}"},
                              headers=author.auth, timeout=timeout)

    def tweet(self, author: Member, text: str | None = None) -> str:
        """Post and return the new tweet's id (asserting 201)."""
        resp = self.post(author, text)
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def home(self, member: Member, limit: int = 100) -> requests.Response:
        return self.http.get(f"{API}/timeline", params={"limit": limit}, headers=member.auth,
                             timeout=10)

    def home_ids(self, member: Member, limit: int = 100) -> list[str]:
        """The ids of a home timeline page that answered 200 without degradation."""
        resp = self.home(member, limit)
        assert resp.status_code == 200 and DEGRADED not in resp.headers, \
            (resp.status_code, resp.headers.get(DEGRADED), resp.text[:200])
        return [t["id"] for t in resp.json()["items"]]

    def user_tweets(self, username: str, timeout: float = 10) -> requests.Response:
        return self.http.get(f"{API}/users/{username}/tweets", timeout=timeout)


def ready(service: str) -> bool:
    """True if the service's /readyz answers 200."""
    try:
        return requests.get(f"{service_url(service)}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def metric(service: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` with `labels` in the service's /metrics (0 if none)."""
    text = requests.get(f"{service_url(service)}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                total += sample.value
    return total


def open_breakers(services: Iterable[str] = SERVING) -> list[str]:
    """`service/breaker` for each breaker that is open (refusing calls) in some live worker.

    Each gunicorn worker has its own breakers, and `murmur_breaker_state` is the highest
    state over the live workers. A half-open breaker (1) is not counted: it lets the next
    call through as its trial, and one in a worker that gets no calls stays half-open.
    """
    found = []
    for service in services:
        text = requests.get(f"{service_url(service)}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            found += [f"{service}/{sample.labels['breaker']}" for sample in family.samples
                      if sample.name == "murmur_breaker_state" and sample.value >= 2]
    return found


def probe_reads(member: Member, rounds: int = 8) -> list[int]:
    """Idempotent reads that reach every serving breaker, sent concurrently; their statuses.

    Concurrent requests open several connections at each hop, so they reach more than one
    worker of each service: a worker's open breaker only moves when a call reaches it.
    """
    paths = [(f"/users/{member.username}", {}), (f"/users/{member.username}/tweets", {}),
             ("/timeline", member.auth)]

    def get(target: tuple[str, dict[str, str]]) -> int:
        path, headers = target
        try:
            return requests.get(f"{API}{path}", headers=headers, timeout=10).status_code
        except requests.RequestException:
            return 0

    with ThreadPoolExecutor(rounds) as pool:
        return list(pool.map(get, paths * rounds))


def assert_steady(member: Member) -> bool:
    """Pass once probe reads all answer 200 and no serving breaker is open in any worker;
    otherwise raise, saying what is not steady (for `wait_until` to report)."""
    statuses = probe_reads(member)
    still_open = open_breakers()
    assert all(status == 200 for status in statuses) and not still_open, \
        f"probe statuses {sorted(set(statuses))}, breakers open: {still_open}"
    return True


def steady_again(member: Member, clock: Stopwatch, after: str) -> float:
    """Wait until `assert_steady` passes; the seconds on `clock` by then.

    Each worker has its own breakers: normal means normal for every worker, not just for
    the one that answered first.
    """
    wait_until(lambda: assert_steady(member), timeout=60, interval=0.2,
               message=f"the steady state again after {after}")
    return clock()


def percentile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stopwatch:
    """Seconds since it was made (or last reset)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def reset(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start

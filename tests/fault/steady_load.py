"""Steady client load for fault tests: idempotent GETs through nginx, every outcome kept.

A fault test starts a `SteadyLoad` before injecting its fault and stops it after recovery;
a failed request is any answer other than 2xx, or no answer at all (connection error,
timeout). The figures (count, failures, max latency) are what the test asserts and prints.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from common import config
from murmur_chaos import api as client
from murmur_chaos.api import Member as Account

API = f"http://127.0.0.1:{config.profile().http_port}/api/v1"


def sign_up(prefix: str) -> Account:
    """An account with a session, through the public API (the chaos experiments' client)."""
    return client.sign_up(API, prefix)


@dataclass(frozen=True)
class Failure:
    """One request that did not get a 2xx answer."""

    at: float  # seconds since the load started
    path: str
    outcome: str  # "HTTP 503 ..." or the exception


@dataclass
class SteadyLoad:
    """`threads` clients, each cycling through `targets` (path, headers) with a short pause.

    The pause keeps the rate well under nginx's per-client limit and leaves the two cores
    to the services: the point is a steady stream of requests, not saturation.
    """

    targets: list[tuple[str, dict[str, str]]]
    threads: int = 4
    pause: float = 0.02
    count: int = 0
    max_latency: float = 0.0
    slowest: str = ""  # when and what the slowest request was
    failures: list[Failure] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    _t0: float = 0.0

    def __enter__(self) -> "SteadyLoad":
        self._t0 = time.monotonic()
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self, offset: int) -> None:
        session = requests.Session()
        n = offset
        while not self._stop.is_set():
            path, headers = self.targets[n % len(self.targets)]
            n += 1
            started = time.monotonic()
            try:
                resp = session.get(f"{API}{path}", headers=headers, timeout=15)
                outcome = "" if 200 <= resp.status_code < 300 else \
                    f"HTTP {resp.status_code} {resp.text[:200]}"
            except requests.RequestException as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            latency = time.monotonic() - started
            with self._lock:
                self.count += 1
                if latency > self.max_latency:
                    self.max_latency = latency
                    self.slowest = f"GET {path} at {started - self._t0:.1f}s"
                if outcome:
                    self.failures.append(Failure(started - self._t0, path, outcome))
            time.sleep(self.pause)
        session.close()

    def wait_for(self, requests_done: int, timeout: float = 30.0) -> None:
        """Block until at least `requests_done` requests were made in all (the load runs)."""
        deadline = time.monotonic() + timeout
        while self.count < requests_done:
            assert time.monotonic() < deadline, f"only {self.count} requests in {timeout}s"
            time.sleep(0.05)

    def summary(self) -> str:
        return (f"{self.count} requests, {len(self.failures)} failed, "
                f"max latency {self.max_latency * 1000:.0f} ms ({self.slowest})")

"""One client attacking the API while another just uses it: the isolation property.

Each hostile pattern is a function sending one request as fast as a thread can; the
victim keeps reading profiles and home timelines and posting, and every one of its
answers is recorded. Used by the e2e isolation test (success ratio) and by
bench/isolation.py (latency against a run without the attacker).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import requests

from e2e._addresses import fresh_address, session_from

NESTED = "[" * 1000 + "]" * 1000
Send = Callable[[requests.Session, str], requests.Response]


def nul_bodies(http: requests.Session, base: str) -> requests.Response:
    """Sign-ups whose display name holds a NUL (the users breaker used to count them)."""
    return http.post(f"{base}/users", timeout=10, json={
        "username": f"h{uuid.uuid4().hex[:12]}", "password": "hostile password",
        "display_name": "nul\x00here"})


def login_flood(http: requests.Session, base: str) -> requests.Response:
    """Guessed passwords for ever new usernames: argon2 behind each one that gets through."""
    return http.post(f"{base}/sessions", timeout=10,
                     json={"username": f"h{uuid.uuid4().hex[:12]}", "password": "guess"})


def nesting(http: requests.Session, base: str) -> requests.Response:
    """A body nested a thousand levels deep."""
    return http.post(f"{base}/users", data=NESTED, timeout=10,
                     headers={"Content-Type": "application/json"})


def oversized_token(http: requests.Session, base: str) -> requests.Response:
    """A bearer token of 8 KB."""
    return http.get(f"{base}/timeline", timeout=10,
                    headers={"Authorization": "Bearer " + "x" * 8192})


PATTERNS: dict[str, Send] = {"NUL bodies": nul_bodies, "login flood": login_flood,
                             "nesting": nesting, "oversized tokens": oversized_token}


@dataclass
class Victim:
    """An ordinary user's requests and their outcomes: (operation, status, seconds)."""

    base: str
    auth: dict[str, str]
    username: str
    answers: list[tuple[str, int, float]] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        """Read a profile, the home timeline, and post, in turn, until `stop`."""
        with requests.Session() as http:
            calls = [("profile", lambda: http.get(f"{self.base}/users/{self.username}", timeout=10)),
                     ("timeline", lambda: http.get(f"{self.base}/timeline", headers=self.auth,
                                                   timeout=10)),
                     ("post", lambda: http.post(f"{self.base}/tweets", headers=self.auth,
                                                json={"text": "still here"}, timeout=10))]
            n = 0
            while not stop.is_set():
                name, call = calls[n % len(calls)]
                started = time.perf_counter()
                try:
                    status = call().status_code
                except requests.RequestException:
                    status = 0
                self.answers.append((name, status, time.perf_counter() - started))
                n += 1

    def failures(self) -> list[tuple[str, int]]:
        """Answers that were not the success expected of them."""
        ok = {"profile": 200, "timeline": 200, "post": 201}
        return [(name, status) for name, status, _ in self.answers if status != ok[name]]

    def p99_ms(self) -> float:
        """The 99th percentile of the victim's latencies, in ms."""
        times = sorted(t for _, _, t in self.answers)
        return 1000 * times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0.0


def attack(send: Send | None, base: str, victim: Victim, seconds: float,
           threads: int = 8) -> Counter:
    """Run `victim` for `seconds` while `threads` hostile clients (from an address of their
    own) send `send` (None: no attacker); the attacker's statuses."""
    stop = threading.Event()
    statuses: Counter = Counter()
    address = fresh_address()

    def hostile() -> None:
        with session_from(address) as http:
            while not stop.is_set():
                try:
                    statuses[send(http, base).status_code] += 1
                except requests.RequestException:
                    statuses[0] += 1

    workers = [threading.Thread(target=victim.run, args=(stop,))]
    if send is not None:
        workers += [threading.Thread(target=hostile) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(seconds)  # the length of the experiment, not a wait for anything
    stop.set()
    for worker in workers:
        worker.join(30)
    return statuses

"""nginx's rate limits: per bearer token, per address when anonymous, and a much stricter
per-address limit on POST /sessions and POST /users (argon2 runs behind them).

Each test overflows one bucket and, while it is still overflowing, shows that a request
counted in another bucket from the same address passes. Under a single per-address limit
that second request would be refused too. Each test ends once its bucket has drained, so
the tests after it are not throttled.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import requests


class Hammer:
    """`threads` clients sending `send(session)` until stopped; keeps every status."""

    def __init__(self, send: Callable[[requests.Session], requests.Response],
                 threads: int = 24) -> None:
        self.send, self.threads = send, threads
        self.statuses: list[int] = []
        self.limited: list[requests.Response] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=threads)

    def _run(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                resp = self.send(http)
                self.statuses.append(resp.status_code)
                if resp.status_code == 429:
                    self.limited.append(resp)

    def __enter__(self) -> "Hammer":
        self._futures = [self._pool.submit(self._run) for _ in range(self.threads)]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=30)
        self._pool.shutdown()


def test_one_token_over_its_limit_does_not_throttle_other_tokens_or_anonymous_callers(
        api, problem) -> None:
    ada, bob = api.sign_up("rl"), api.sign_up("rl")
    with Hammer(lambda http: http.get(f"{api.base}/no-such-route", headers=ada.auth,
                                      timeout=5)) as hammer:
        api.wait_until(lambda: len(hammer.limited) >= 20, timeout=30,
                       message="ada's token throttled (20 answers 429)")
        # ada's bucket is overflowing right now; bob's token and an anonymous caller from
        # the same address are each counted in their own bucket.
        others = [api.get("/no-such-route", headers=bob.auth).status_code for _ in range(5)]
        anonymous = [api.get("/openapi.json").status_code for _ in range(5)]
        still_limited = len(hammer.limited)
    assert others == [404] * 5, others
    assert anonymous == [200] * 5, anonymous
    assert still_limited >= 20
    body = problem(hammer.limited[0], 429)
    assert body["detail"] and int(hammer.limited[0].headers["Retry-After"]) >= 1
    api.wait_until(lambda: api.get("/no-such-route", headers=ada.auth).status_code == 404,
                   timeout=15, message="ada's bucket drained")


def test_sign_ins_have_a_much_stricter_limit_per_address(api, problem) -> None:
    member = api.sign_up("rl")
    # An invalid body is refused by the gateway without hashing anything, but nginx counts
    # it first: 40 at once overflow the sign-in bucket (10/s, 20 may wait) at once.
    with Hammer(lambda http: http.post(f"{api.base}/sessions", json={}, timeout=15),
                threads=40) as hammer:
        api.wait_until(lambda: hammer.limited, timeout=20, message="a sign-in answered 429")
        # Meanwhile the same address reads, anonymously and with a token, unthrottled.
        reads = [api.get("/openapi.json").status_code,
                 api.get("/timeline", headers=member.auth).status_code,
                 api.get(f"/users/{member.username}").status_code]
    assert reads == [200, 200, 200], reads
    assert 422 in hammer.statuses  # the first ones passed nginx and reached the gateway
    problem(hammer.limited[0], 429)
    assert int(hammer.limited[0].headers["Retry-After"]) >= 1
    # Sign-ups share the bucket: right after the burst a new account has to wait its turn
    # but is not refused (a lone request is delayed, never rejected).
    api.wait_until(lambda: api.post("/sessions", json={}).status_code == 422, timeout=15,
                   message="the sign-in bucket drained")
    assert api.sign_up("rl").token

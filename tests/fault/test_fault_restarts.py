"""A rolling restart of every service process of the test profile, under load.

Steady-state hypothesis: a steady stream of idempotent GETs through nginx is answered 2xx
every time, and every tweet accepted for an author reaches each follower's home timeline
exactly once. `make rolling-restart` restarts the gateways one after the other (nginx
sends idempotent requests to the other one), replaces the users and timeline workers in
place (the listening socket never closes), and restarts the relays, the author projection
and fanout (what they had not committed is processed again, idempotently). Throughout, no
read fails; and posts made meanwhile, retried by their client with the same
Idempotency-Key when they get no answer or a 503, all reach the follower, none twice.

One rolling restart (the module fixture) serves both tests: one asserts the reads, the
other the posts.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from conftest import make, wait_until
from fault.steady_load import API, Account, SteadyLoad, sign_up
import stackctl as platform

DELIVERY_DEADLINE = 60.0
POST_DEADLINE = 30.0  # how long one post may keep being retried
PROCESSES = ["test-gateway-1", "test-gateway-2", "test-users", "test-timeline",
             "test-users-relay", "test-timeline-relay", "test-timeline-authors", "test-fanout"]
RELOADED = {"test-users", "test-timeline"}  # gunicorn workers replaced in place


def worker_pids(master: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def generation() -> dict[str, set[int]]:
    """The pids doing each process's work: the workers of a reloaded service, else the
    supervised process itself."""
    pids = {}
    for name in PROCESSES:
        info = platform.process_info(name)
        assert info["statename"] == "RUNNING", f"{name} is {info['statename']}"
        pids[name] = worker_pids(info["pid"]) if name in RELOADED else {info["pid"]}
    return pids


@dataclass
class Poster:
    """Posts tweets one after another until stopped; each post is retried with the same
    Idempotency-Key while it gets no answer or a 503, as a careful client would."""

    author: Account
    accepted: dict[str, set[str]] = field(default_factory=dict)  # key -> tweet ids got
    retries: int = 0
    lost: list[str] = field(default_factory=list)  # keys never accepted by the deadline
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "Poster":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=POST_DEADLINE + 15)

    def _run(self) -> None:
        session = requests.Session()
        n = 0
        while not self._stop.is_set():
            self._post(session, f"restart-{uuid.uuid4().hex}", f"during a restart #{n}")
            n += 1
            time.sleep(0.3)
        session.close()

    def _post(self, session: requests.Session, key: str, text: str) -> None:
        deadline = time.monotonic() + POST_DEADLINE
        headers = {**self.author.auth, "Idempotency-Key": key}
        while time.monotonic() < deadline:
            try:
                resp = session.post(f"{API}/tweets", json={"text": text}, headers=headers,
                                    timeout=15)
            except requests.RequestException:
                resp = None
            if resp is not None and resp.status_code == 201:
                self.accepted.setdefault(key, set()).add(resp.json()["id"])
                return
            if resp is not None and resp.status_code != 503:
                raise AssertionError(f"post answered {resp.status_code}: {resp.text}")
            self.retries += 1
            time.sleep(0.2)
        self.lost.append(key)


@dataclass
class Observed:
    load: SteadyLoad
    poster: Poster
    follower: Account
    before: dict[str, set[int]]
    after: dict[str, set[int]]
    output: str
    seconds: float


@pytest.fixture(scope="module")
def rolling_restart() -> Observed:
    """Run `make rolling-restart` once, under read load and while posting."""
    follower, author, other = sign_up("fault_rr_f"), sign_up("fault_rr_a"), sign_up("fault_rr_o")
    followed = requests.put(f"{API}/users/me/following/{author.username}", headers=follower.auth,
                            timeout=10)
    assert followed.status_code == 204, followed.text
    targets = [("/timeline?limit=20", follower.auth), ("/timeline?limit=20", other.auth),
               (f"/users/{author.username}", {}), (f"/users/{author.username}/tweets", {})]
    before = generation()
    t0 = time.monotonic()
    with SteadyLoad(targets, threads=4) as load, Poster(author) as poster:
        load.wait_for(100)
        try:
            result = make("rolling-restart", timeout=600)
        finally:
            # Whatever happened, leave every process of the profile running.
            for name in PROCESSES:
                if platform.process_info(name)["statename"] != "RUNNING":
                    make("start", f"SERVICE={name}")
        load.wait_for(load.count + 100)
    seconds = time.monotonic() - t0
    assert result.returncode == 0, result.stdout + result.stderr
    return Observed(load, poster, follower, before, generation(), result.stdout, seconds)


def test_a_rolling_restart_under_read_load_fails_no_request(rolling_restart):
    """Every service process is replaced, and not one idempotent read fails meanwhile."""
    obs = rolling_restart
    print(f"\nrolling restart {obs.seconds:.0f}s: {obs.load.summary()}")
    for name in PROCESSES:
        assert not obs.after[name] & obs.before[name], f"{name} was not replaced"
    assert obs.load.count > 300, "too little load to show anything"
    assert obs.load.failures == [], \
        f"{len(obs.load.failures)} failed: {obs.load.failures[:5]}\n{obs.output}"


def test_every_post_made_during_a_rolling_restart_reaches_the_follower_exactly_once(
        rolling_restart):
    """Posts retried with their Idempotency-Key are each accepted once, as one tweet, and
    each reaches the follower's home timeline exactly once."""
    obs = rolling_restart
    accepted = obs.poster.accepted
    print(f"\n{len(accepted)} posts accepted during the restart, {obs.poster.retries} retries")
    assert obs.poster.lost == [], f"posts never accepted: {obs.poster.lost}"
    assert len(accepted) >= 10, "too few posts to show anything"
    assert all(len(ids) == 1 for ids in accepted.values()), \
        f"one key gave several tweets: {[ids for ids in accepted.values() if len(ids) > 1]}"
    posted = {next(iter(ids)) for ids in accepted.values()}

    def home_ids() -> list[str]:
        """Every entry of the follower's home timeline, page by page."""
        ids: list[str] = []
        params: dict[str, object] = {"limit": 100}
        while True:
            resp = requests.get(f"{API}/timeline", params=params, headers=obs.follower.auth,
                                timeout=10)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            ids += [t["id"] for t in page["items"]]
            if not page["next_cursor"]:
                return ids
            params["cursor"] = page["next_cursor"]

    ids = wait_until(lambda: (lambda got: got if posted <= set(got) else None)(home_ids()),
                     timeout=DELIVERY_DEADLINE, interval=0.5,
                     message="every accepted post in the follower's home timeline")
    assert len(ids) == len(set(ids)), f"duplicates: {sorted(i for i in ids if ids.count(i) > 1)}"
    assert set(ids) == posted, f"unexpected entries: {set(ids) - posted}"

"""A ledger of acknowledged posts, and the check that each reached every follower once.

An author with followers posts while the fault happens; every post carries an
Idempotency-Key and is retried, as a careful client does, while it gets no answer or a
503. A post is acknowledged when it answered 201: from then on the system owes every
follower that tweet, exactly once. After the fault, every follower's home timeline is
read and the ledger settled: tweets lost (acknowledged, never delivered) and duplicated.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from common import config
from murmur_chaos import api as client
from murmur_chaos import context
from murmur_chaos.context import Deviation, Run

REPO = Path(__file__).resolve().parents[2]
_POSTER: "Poster | None" = None


def book(run: Run) -> dict[str, Any]:
    """The ledger: the author, the followers, and every post with its outcome."""
    return context.state(run).get("ledger", {})


def _save(run: Run, ledger: dict[str, Any]) -> None:
    context.update_state(run, ledger=ledger)


def acknowledged_ids(run: Run, before: float | None = None) -> list[str]:
    """Tweet ids of the posts that answered 201 (by `before`, unix seconds)."""
    return [p["id"] for p in book(run).get("posts", [])
            if p.get("id") and (before is None or p["acked_at"] <= before)]


def prepare_audience(followers: int = 2, configuration: dict | None = None) -> dict[str, Any]:
    """Action: a new author followed by `followers` new accounts, through the API."""
    run = context.current(configuration)
    author = client.sign_up(run.api, "chaos_author")
    fans = [client.sign_up(run.api, "chaos_fan") for _ in range(followers)]
    for fan in fans:
        client.follow(run.api, fan, author)
    ledger = {"author": author.as_dict(), "followers": [f.as_dict() for f in fans],
              "wide": 0, "posts": []}
    _save(run, ledger)
    return {"author": author.username, "followers": len(fans)}


def prepare_wide_audience(followers: int = 3000,
                          configuration: dict | None = None) -> dict[str, Any]:
    """Action: an author with `followers` followers, bulk-loaded by the platform's seed
    (local only: thousands of sign-ups through the API would take minutes). Two of them
    sign in, to read their home timelines through the API as well."""
    run = context.current(configuration)
    if str(REPO / "local") not in sys.path:
        sys.path.insert(0, str(REPO / "local"))
    import seed

    started = time.monotonic()
    made = seed.seed_audience(f"chaos{uuid.uuid4().hex[:6]}", followers)
    author = client.Member(str(made["author"]["id"]), made["author"]["username"],
                           client.sign_in(run.api, made["author"]["username"],
                                          made["password"]))
    readers = [client.Member(str(f["id"]), f["username"],
                             client.sign_in(run.api, f["username"], made["password"]))
               for f in (made["followers"][0], made["followers"][-1])]
    ledger = {"author": author.as_dict(), "followers": [r.as_dict() for r in readers],
              "wide": followers, "wide_ids": [f["id"] for f in made["followers"]],
              "posts": []}
    _save(run, ledger)
    return {"author": author.username, "followers": followers,
            "seconds": round(time.monotonic() - started, 1)}


class Poster:
    """Posts as the ledger's author until stopped, each post retried with its
    Idempotency-Key while it gets no answer or a 503 (for up to `retry_deadline` s)."""

    def __init__(self, run: Run, interval: float, retry_deadline: float) -> None:
        self.run, self.interval, self.retry_deadline = run, interval, retry_deadline
        self.author = client.member(book(run)["author"])
        self.posts: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(timeout=self.retry_deadline + 20)
        return self.posts

    def _loop(self) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                self.posts.append(post_once(self.run, http, self.author, self.retry_deadline))
                self._stop.wait(self.interval)


def post_once(run: Run, http: requests.Session, author: client.Member,
              retry_deadline: float) -> dict[str, Any]:
    """One post, retried with the same Idempotency-Key; its record for the ledger."""
    key = f"chaos-{uuid.uuid4().hex}"
    record: dict[str, Any] = {"key": key, "sent_at": time.time(), "attempts": 0,
                              "first": None, "id": None, "ids": []}
    headers = {**author.auth, "Idempotency-Key": key}
    end = time.monotonic() + retry_deadline
    while time.monotonic() < end:
        record["attempts"] += 1
        try:
            resp = http.post(f"{run.api}/tweets", json={"text": f"ledger {key[-8:]}"},
                             headers=headers, timeout=10)
            outcome = resp.status_code
        except requests.RequestException as exc:
            resp, outcome = None, type(exc).__name__
        record["first"] = record["first"] or outcome
        if resp is not None and resp.status_code == 201:
            tweet = resp.json()["id"]
            record["ids"].append(tweet)
            record.update(id=tweet, acked_at=time.time())
            if len(set(record["ids"])) > 1:
                record["conflict"] = True
            return record
        if resp is not None and resp.status_code not in (429, 502, 503, 504):
            record["refused"] = f"{resp.status_code} {resp.text[:120]}"
            return record
        time.sleep(0.3)
    record["unacknowledged"] = True
    return record


def start_posting(interval: float = 0.5, retry_deadline: float = 30,
                  configuration: dict | None = None) -> str:
    """Action: post as the ledger's author in the background until `stop_posting`."""
    global _POSTER
    run = context.current(configuration)
    _POSTER = Poster(run, interval, retry_deadline)
    _POSTER.start()
    return f"posting every {interval}s"


def stop_posting(configuration: dict | None = None) -> dict[str, Any]:
    """Action: stop the background poster and write its posts into the ledger."""
    global _POSTER
    run = context.current(configuration)
    posts = _POSTER.stop() if _POSTER else []
    _POSTER = None
    _record(run, posts)
    acked = sum(1 for p in posts if p.get("id"))
    return {"posts": len(posts), "acknowledged": acked}


def post(count: int = 5, retry_deadline: float = 30,
         configuration: dict | None = None) -> dict[str, Any]:
    """Action: `count` posts one after another, each retried with its key; recorded."""
    run = context.current(configuration)
    author = client.member(book(run)["author"])
    with requests.Session() as http:
        posts = [post_once(run, http, author, retry_deadline) for _ in range(count)]
    _record(run, posts)
    return {"posts": count, "first_answers": [p["first"] for p in posts],
            "ids": [p["id"] for p in posts]}


def _record(run: Run, posts: list[dict[str, Any]]) -> None:
    ledger = book(run)
    ledger["posts"] = ledger.get("posts", []) + posts
    _save(run, ledger)


def posts_accepted_first_time(configuration: dict | None = None) -> bool:
    """Probe: every post sent between the fault's start and end answered 201 at once."""
    run = context.current(configuration)
    start, end = context.last_mark(run, "fault started"), context.last_mark(run, "fault ended")
    if start is None:
        return True
    during = [p for p in book(run).get("posts", [])
              if start <= p["sent_at"] <= (end or time.time())]
    if not during:
        raise Deviation("no post was sent while the fault lasted")
    refused = [p["first"] for p in during if p["first"] != 201]
    if refused:
        raise Deviation(f"{len(refused)} of {len(during)} posts during the fault were not "
                        f"accepted at once: {sorted(set(map(str, refused)))}")
    return True


def _wide_missing(run: Run, tweet_ids: list[str], follower_ids: list[int]) -> int:
    """How many (follower, tweet) pairs are missing from the followers' home timelines in
    Redis: thousands of followers are checked in the store, not through the API."""
    import redis

    from common.home_timeline import encode, key

    stores = config.stores()
    missing = 0
    with redis.Redis.from_url(stores.redis_url, socket_timeout=10) as store:
        for start in range(0, len(follower_ids), 1000):
            pipe = store.pipeline(transaction=False)
            chunk = follower_ids[start:start + 1000]
            for fid in chunk:
                for tid in tweet_ids:
                    pipe.zscore(key(int(fid)), encode(int(tid)))
            missing += sum(1 for score in pipe.execute() if score is None)
    return missing


def every_post_delivered_once(deadline: float = 90,
                              configuration: dict | None = None) -> bool:
    """Probe: every acknowledged post is in every follower's home timeline exactly once
    (polled until `deadline`); sets the figures tweets_acked, tweets_lost and
    tweets_duplicated. True before anything was posted."""
    run = context.current(configuration)
    ledger = book(run)
    posts = ledger.get("posts", [])
    if not posts:
        return True
    acked = [p["id"] for p in posts if p.get("id")]
    conflicts = [p["key"] for p in posts if p.get("conflict")]
    followers = [client.member(f) for f in ledger["followers"]]
    end = time.monotonic() + deadline
    lost = dup = 0
    detail = ""
    while True:
        lost = dup = 0
        problems = []
        try:
            for reader in followers:
                seen = client.home_ids(run.api, reader, most=max(800, 2 * len(acked)))
                counts = {tid: seen.count(tid) for tid in acked}
                lost += sum(1 for n in counts.values() if n == 0)
                dup += sum(n - 1 for n in counts.values() if n > 1)
            if ledger.get("wide"):
                lost += _wide_missing(run, acked, ledger["wide_ids"])
        except (AssertionError, requests.RequestException, OSError) as exc:
            problems.append(f"could not read the timelines: {exc}")
        detail = "; ".join(problems)
        if not problems and lost == 0 and dup == 0:
            break
        if time.monotonic() > end:
            break
        time.sleep(1.0)
    audience = ledger.get("wide") or len(followers)
    ended = context.last_mark(run, "fault ended")
    if not detail and not lost and not dup and ended:
        context.set_figures(run, delivered_after_fault_s=round(max(0.0, time.time() - ended), 1))
    context.set_figures(run, tweets_posted=len(posts), tweets_acked=len(acked),
                        tweets_lost=lost, tweets_duplicated=dup, audience=audience,
                        idempotency_conflicts=len(conflicts))
    if detail:
        raise Deviation(detail)
    if lost or dup or conflicts:
        raise Deviation(f"{len(acked)} acknowledged posts to {audience} followers: "
                        f"{lost} deliveries missing, {dup} duplicated after {deadline:.0f}s"
                        + (f", {len(conflicts)} keys gave two tweets" if conflicts else ""))
    return True

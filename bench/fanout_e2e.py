"""Fan-out through the real path: post → relay → Kafka → fanout → 10,000 home timelines.

    python bench/fanout_e2e.py [--followers 10000] [--rounds 5] [--prefill 800]

An author with N followers is an ordinary account for this run: it is bulk-loaded with
no celebrity status, so timeline marks its posts for fan-out, and the benchmark also
stops the platform's `fanout` process, runs the same worker code with the threshold above
N in the same consumer group (events without that mark are decided by follower count),
and restarts the platform's worker at the end. Each round posts one tweet through nginx and watches the home timelines of the
first and the last follower (fanout pages followers in ascending id order), then checks
that every follower holds the tweet. Printed per round and as medians:

- post → last follower: from the 201 to the last follower's timeline holding the tweet
  (target ≤ 1 s; includes the outbox relay and Kafka);
- deliveries/s: timelines written between the first and the last follower's delivery,
  divided by that time (target ≥ 300,000/s).
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))
sys.path.insert(0, str(REPO / "local"))

from common import config, home_timeline, topics  # noqa: E402
from common.ids import IdGenerator  # noqa: E402
from support import start_ready  # noqa: E402

PASSWORD = "bench-password-1"
WORKER_PORT = config.env_int("BENCH_FANOUT_PORT", 18399)


def api() -> str:
    return f"http://127.0.0.1:{config.profile().http_port}/api/v1"


def create_author_with_followers(n: int) -> tuple[str, list[int]]:
    """Bulk-load an author and n followers into users' database; returns (username, ids)."""
    import psycopg
    from argon2 import PasswordHasher

    tag = uuid.uuid4().hex[:8]
    ids = IdGenerator(1022)  # the benchmark's own worker id: never leased by a service
    author_id, author = ids.next_id(), f"bench_author_{tag}"
    password_hash = PasswordHasher().hash(PASSWORD)
    follower_ids = [ids.next_id() for _ in range(n)]
    with psycopg.connect(config.stores().pg_conninfo) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, username, password_hash, display_name, "
                    "followers_count) VALUES (%s, %s, %s, %s, %s)",
                    (author_id, author, password_hash, author, n))
        with cur.copy("COPY users (id, username, password_hash, following_count) "
                      "FROM STDIN") as copy:
            for i, fid in enumerate(follower_ids):
                copy.write_row((fid, f"bench_f{i}_{tag}", password_hash, 1))
        with cur.copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for fid in follower_ids:
                copy.write_row((fid, author_id))
        # Announce the author as sign-up does, so timeline's copy of authors names them.
        cur.execute("SELECT users_announce(%s, %s)",
                    (config.stores().topic(topics.USERS), [author_id]))
    return author, sorted(follower_ids)


def stackctl(*args: str) -> None:
    subprocess.run([sys.executable, str(REPO / "local/stackctl"),
                    "--profile", config.profile().name, *args], check=True,
                   stdout=subprocess.DEVNULL)


def start_bench_worker(threshold: int) -> subprocess.Popen:
    """The fanout worker, same code and group as the platform's, with a raised threshold."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "services"),
           "CELEBRITY_THRESHOLD": str(threshold), "MURMUR_PORT": str(WORKER_PORT),
           "MURMUR_PROCESS": "bench-fanout"}
    log = open(config.murmur_home() / "log" / "bench-fanout.log", "ab")
    return start_ready([sys.executable, "-m", "fanout.entrypoints.worker"], env,
                       f"http://127.0.0.1:{WORKER_PORT}/readyz",
                       "the benchmark's fanout worker", log=log)


def prefill(redis_client, followers: list[int], entries: int) -> None:
    """Give every follower a timeline of `entries` older tweet ids (the steady state)."""
    print(f"prefilling {len(followers)} timelines with {entries} entries each ...")
    members = {home_timeline.encode(tweet_id): 0 for tweet_id in range(1, entries + 1)}
    for start in range(0, len(followers), 200):
        pipe = redis_client.pipeline(transaction=False)
        for follower in followers[start:start + 200]:
            pipe.zadd(home_timeline.key(follower), members)
        pipe.execute()


def one_round(token: str, followers: list[int], redis_client) -> dict[str, float]:
    """Post once and time the deliveries to the first and the last follower."""
    first_key, last_key = home_timeline.key(followers[0]), home_timeline.key(followers[-1])
    resp = requests.post(f"{api()}/tweets", json={"text": "fan this out"}, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    posted = time.perf_counter()
    resp.raise_for_status()
    member = home_timeline.encode(int(resp.json()["id"]))
    first = last = None
    deadline = posted + 60
    while last is None and time.perf_counter() < deadline:
        pipe = redis_client.pipeline(transaction=False)
        pipe.zscore(first_key, member)
        pipe.zscore(last_key, member)
        at_first, at_last = pipe.execute()
        now = time.perf_counter()
        if first is None and at_first is not None:
            first = now
        if at_last is not None:
            last = now
    if last is None or first is None:
        sys.exit("the tweet did not reach every follower within 60 s")
    pipe = redis_client.pipeline(transaction=False)
    for follower in followers:
        pipe.zscore(home_timeline.key(follower), member)
    missing = sum(score is None for score in pipe.execute())
    spread = max(last - first, 1e-4)
    batch = config.env_int("FANOUT_DELIVERY_BATCH", 1000)
    return {"post_to_last_ms": (last - posted) * 1000, "first_to_last_ms": (last - first) * 1000,
            "deliveries_per_s": (len(followers) - min(batch, len(followers) - 1)) / spread,
            "missing": missing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prefill", type=int, default=0,
                        help="entries put into every follower's timeline first (800 = full)")
    args = parser.parse_args()
    import redis

    print(f"profile {config.profile().name}: an author with {args.followers} followers ...")
    author, followers = create_author_with_followers(args.followers)
    token = requests.post(f"{api()}/sessions", json={"username": author, "password": PASSWORD},
                          timeout=30).json()["access_token"]
    redis_client = redis.Redis.from_url(config.stores().redis_url)
    if args.prefill:
        prefill(redis_client, followers, args.prefill)
    platform_worker = "fanout" if config.profile().name == "dev" else "test-fanout"
    stackctl("stop", platform_worker)
    worker = start_bench_worker(threshold=args.followers + 1)
    try:
        one_round(token, followers, redis_client)  # warm: connections, scripts, group join
        rounds = [one_round(token, followers, redis_client) for _ in range(args.rounds)]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        stackctl("start", platform_worker)
    print(f"\n{'round':<7}{'post→last ms':>14}{'first→last ms':>15}{'deliveries/s':>14}"
          f"{'missing':>9}")
    for i, r in enumerate(rounds, 1):
        print(f"{i:<7}{r['post_to_last_ms']:>14.0f}{r['first_to_last_ms']:>15.0f}"
              f"{r['deliveries_per_s']:>14,.0f}{r['missing']:>9}")
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"{'median':<7}{med['post_to_last_ms']:>14.0f}{med['first_to_last_ms']:>15.0f}"
          f"{med['deliveries_per_s']:>14,.0f}{med['missing']:>9.0f}")
    print(f"\npost → last of {args.followers} followers: {med['post_to_last_ms']:.0f} ms "
          "(target ≤ 1000 ms)")
    print(f"fan-out deliveries: {med['deliveries_per_s']:,.0f}/s (target ≥ 300,000/s)")
    return 0 if all(r["missing"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())

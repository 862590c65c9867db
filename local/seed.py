"""Seed a demo social graph: power-law follower counts, a few celebrities, tweets for all.

    python local/seed.py [--users 10000] [--tweets 3] [--celebrities 5] [--manifest PATH]

Users and follows are bulk-loaded into the users service's Postgres database (one argon2
hash of the shared demo password serves every account, so seeding 10,000 users takes
seconds, not the minutes 10,000 separate hashes would). Tweets go through the timeline
service's own API, so they take the real path: logged batch, outbox, relay, Kafka, fan-out.
Re-running is safe: usernames, follows and tweets (by Idempotency-Key) are not duplicated.

At the end it writes a manifest for the load tests (`var/seed/<profile>.json` unless
`--manifest` says otherwise): the shared password, the celebrity threshold, a sample of the
accounts with their follower and following counts and a role (celebrity: over the
threshold, merged at read time; heavy: among the 5 % who follow the most; regular), and
pairs of an author and one of their followers for the fan-out freshness measurement.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config, topics  # noqa: E402
from common.ids import IdGenerator  # noqa: E402

DEMO_PASSWORD = "murmur-demo"
WORDS = ("kafka cassandra redis postgres nginx fanout timeline latency throughput replica "
         "partition quorum cache breaker retry deadline trace span outbox idempotent shard "
         "gossip leader follower snapshot compaction backpressure jitter").split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=config.env_int("SEED_USERS", 10_000))
    parser.add_argument("--tweets", type=int, default=config.env_int("SEED_TWEETS", 3),
                        help="tweets per user")
    parser.add_argument("--celebrities", type=int, default=config.env_int("SEED_CELEBRITIES", 5))
    parser.add_argument("--mean-following", type=int, default=20,
                        help="average number of accounts a user follows")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same graph each run)")
    parser.add_argument("--concurrency", type=int, default=16, help="parallel tweet posts")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="where to write the load-test manifest "
                             "(default: var/seed/<profile>.json)")
    return parser.parse_args(argv)


def progress(total: int, desc: str):
    """A tqdm progress bar on stderr."""
    from tqdm import tqdm

    return tqdm(total=total, desc=f"{desc:<9}", unit="", dynamic_ncols=True, mininterval=0.5)


def build_graph(n_users: int, n_celebrities: int, mean_following: int, threshold: int,
                rng: random.Random) -> list[set[int]]:
    """followees[i] for each user index i: power-law popularity plus a few celebrities."""
    # Zipf-like popularity over non-celebrities: the k-th most popular gets weight 1/k.
    weights = [1.0 / (rank + 1) for rank in range(n_users)]
    cumulative = list(itertools.accumulate(weights))
    followees: list[set[int]] = [set() for _ in range(n_users)]
    for i in range(n_users):
        want = min(n_users - 1, max(1, int(rng.expovariate(1 / mean_following))))
        while len(followees[i]) < want:
            j = bisect.bisect_left(cumulative, rng.random() * cumulative[-1])
            if j != i and j >= n_celebrities:
                followees[i].add(j)
    # Celebrities (indexes 0..n-1) are followed by enough users to cross the threshold.
    shares = [min(0.95, (1.2 + 0.3 * (n_celebrities - 1 - c)) * threshold / max(n_users, 1))
              for c in range(n_celebrities)]
    for i in range(n_users):
        for c, share in enumerate(shares):
            if c != i and rng.random() < share:
                followees[i].add(c)
    return followees


def username(i: int, n_celebrities: int) -> str:
    return f"celeb_{i:02d}" if i < n_celebrities else f"demo_{i:05d}"


def load_users_and_follows(args: argparse.Namespace, stores: config.Stores,
                           followees: list[set[int]]) -> list[int]:
    """Insert users and follows (idempotently); returns the user ids by index."""
    names = [username(i, args.celebrities) for i in range(args.users)]
    user_ids = insert_users_and_follows(stores, names, followees)
    settle_celebrities(stores, user_ids)
    return user_ids


def settle_celebrities(stores: config.Stores, user_ids: list[int]) -> int:
    """Give accounts whose follows were written past the service their celebrity status,
    announced as a follow crossing the threshold announces it (users_settle_celebrities),
    so that timeline merges their posts at read time instead of fanning them out."""
    import psycopg

    with psycopg.connect(stores.pg_conninfo) as conn:
        (changed,) = conn.execute("SELECT users_settle_celebrities(%s, %s, %s)",
                                  (stores.topic(topics.USERS),
                                   stores.profile.celebrity_threshold, user_ids)).fetchone()
    return changed


def insert_users_and_follows(stores: config.Stores, names: list[str],
                             followees: list[set[int]], announce: slice = slice(None)) -> list[int]:
    """Insert the accounts `names` and who follows whom (`followees[i]`: the indexes user i
    follows), idempotently, every account with the demo password; the user ids by index.
    The accounts in `announce` (all by default) are announced on users.v1 as sign-up does."""
    import psycopg
    from argon2 import PasswordHasher

    password_hash = PasswordHasher().hash(DEMO_PASSWORD)
    ids = IdGenerator(1023)  # the seed's own worker id: never leased by a service
    with psycopg.connect(stores.pg_conninfo) as conn:
        with conn.cursor() as cur, progress(len(names), "users") as bar:
            for start in range(0, len(names), 1000):
                chunk = names[start:start + 1000]
                rows = [(ids.next_id(), name, password_hash, name.replace("_", " ").title())
                        for name in chunk]
                cur.executemany(
                    "INSERT INTO users (id, username, password_hash, display_name) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO NOTHING", rows)
                bar.update(len(chunk))
            id_by_name = dict(cur.execute(
                "SELECT username, id FROM users WHERE username = ANY(%s)", (names,)).fetchall())
        user_ids = [id_by_name[name] for name in names]
        conn.commit()
        total = sum(len(f) for f in followees)
        # COPY into a temporary table, then one INSERT ... ON CONFLICT keeps re-runs safe.
        with conn.cursor() as cur, progress(total, "follows") as bar:
            cur.execute("CREATE TEMP TABLE seed_follows (follower_id bigint, followee_id bigint)")
            with cur.copy("COPY seed_follows (follower_id, followee_id) FROM STDIN") as copy:
                for i, targets in enumerate(followees):
                    for j in targets:
                        copy.write_row((user_ids[i], user_ids[j]))
                    bar.update(len(targets))
            cur.execute("INSERT INTO follows (follower_id, followee_id) "
                        "SELECT follower_id, followee_id FROM seed_follows ON CONFLICT DO NOTHING")
            # Counts recomputed from the graph, in the same transaction as the follows.
            cur.execute("""
                UPDATE users u SET
                    followers_count = (SELECT count(*) FROM follows WHERE followee_id = u.id),
                    following_count = (SELECT count(*) FROM follows WHERE follower_id = u.id),
                    version = u.version + 1
                WHERE u.id = ANY(%s)""", (user_ids,))
            # Rows written past the service reach other services only as events: announce
            # the accounts (and their new versions) through users' outbox, as sign-up does.
            cur.execute("SELECT users_announce(%s, %s)",
                        (stores.topic(topics.USERS), user_ids[announce]))
        conn.commit()
    return user_ids


def seed_audience(prefix: str, followers: int) -> dict[str, object]:
    """One author followed by `followers` new accounts (a wide fan-out, for the chaos
    experiments), in the active profile; their names, ids and the shared password."""
    names = [f"{prefix}_author"] + [f"{prefix}_f{i}" for i in range(followers)]
    # Only the author posts: the followers need not be announced to timeline.
    ids = insert_users_and_follows(config.stores(), names, [set()] + [{0}] * followers,
                                   announce=slice(0, 1))
    return {"password": DEMO_PASSWORD, "author": {"username": names[0], "id": ids[0]},
            "followers": [{"username": n, "id": i} for n, i in zip(names[1:], ids[1:])]}


def post_tweets(args: argparse.Namespace, user_ids: list[int], rng: random.Random) -> int:
    """Post tweets through the timeline service; returns how many were accepted."""
    import requests

    base = config.service_url("timeline")
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=args.concurrency)
    session.mount("http://", adapter)
    jobs = [(uid, n) for n in range(args.tweets) for uid in user_ids]
    rng.shuffle(jobs)

    def post(uid: int, n: int) -> bool:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        resp = session.post(f"{base}/tweets", json={"text": f"{text} #{n}"}, timeout=10,
                            headers={"X-User-Id": str(uid), "Idempotency-Key": f"seed-{uid}-{n}"})
        return resp.status_code == 201

    accepted = 0
    with ThreadPoolExecutor(args.concurrency) as pool, progress(len(jobs), "tweets") as bar:
        for future in as_completed([pool.submit(post, uid, n) for uid, n in jobs]):
            accepted += future.result()
            bar.update(1)
    return accepted


def manifest(args: argparse.Namespace, followees: list[set[int]], threshold: int,
             rng: random.Random, sample: int = 3000, pairs: int = 200) -> dict:
    """What a load test needs to know about the seeded graph (see the module docstring)."""
    n = args.users
    followers_of: list[list[int]] = [[] for _ in range(n)]
    for i, targets in enumerate(followees):
        for j in targets:
            followers_of[j].append(i)
    celebrities = [i for i in range(n) if len(followers_of[i]) >= threshold]
    others = sorted(set(range(n)) - set(celebrities), key=lambda i: -len(followees[i]))
    heavy = others[:max(1, n // 20)] if others else []
    regular = others[len(heavy):]
    chosen = {i: "celebrity" for i in celebrities[:100]}
    chosen.update({i: "heavy" for i in heavy[:500]})
    chosen.update({i: "regular" for i in rng.sample(regular, min(sample, len(regular)))})
    fanned = [i for i in range(n) if 0 < len(followers_of[i]) < threshold]
    fanout_pairs = [(username(i, args.celebrities),
                     username(rng.choice(followers_of[i]), args.celebrities))
                    for i in rng.sample(fanned, min(pairs, len(fanned)))]
    celebrity_pairs = [(username(i, args.celebrities),
                        username(rng.choice(followers_of[i]), args.celebrities))
                       for i in celebrities[:pairs]]
    return {
        "profile": config.profile().name, "password": DEMO_PASSWORD,
        "celebrity_threshold": threshold, "users": n, "tweets_each": args.tweets,
        "seeded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "accounts": [{"username": username(i, args.celebrities),
                      "followers": len(followers_of[i]), "following": len(followees[i]),
                      "role": role} for i, role in sorted(chosen.items())],
        "fanout_pairs": fanout_pairs, "celebrity_pairs": celebrity_pairs,
    }


def write_manifest(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stores = config.stores()
    threshold = config.celebrity_threshold()
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    print(f"Seeding {args.users} users ({args.celebrities} celebrities over {threshold} "
          f"followers), {args.tweets} tweets each, into the {config.profile().name} profile")
    followees = build_graph(args.users, args.celebrities, args.mean_following, threshold, rng)
    user_ids = load_users_and_follows(args, stores, followees)
    accepted = post_tweets(args, user_ids, rng)
    followers = [0] * args.users
    for targets in followees:
        for j in targets:
            followers[j] += 1
    busiest = max(range(args.celebrities, args.users), key=lambda i: len(followees[i]))
    print(f"\nDone in {time.monotonic() - t0:.0f}s: {args.users} users, "
          f"{sum(followers)} follows, {accepted} tweets accepted (fan-out continues in the "
          "background).")
    over = sum(1 for count in followers if count >= threshold)
    print(f"{over} accounts are over the celebrity threshold ({threshold}): their tweets are "
          "merged at read time, not fanned out.")
    print(f"Sample logins (password {DEMO_PASSWORD!r}):")
    print(f"  {username(0, args.celebrities):<12} a celebrity with {followers[0]} followers")
    print(f"  {username(busiest, args.celebrities):<12} follows {len(followees[busiest])} "
          "accounts: a busy home timeline")
    regular = [i for i in range(args.celebrities, args.users) if followers[i] < threshold]
    if regular:
        top = max(regular, key=lambda i: followers[i])
        print(f"  {username(top, args.celebrities):<12} the most-followed account under the "
              f"threshold ({followers[top]} followers): its posts are fanned out")
    path = args.manifest or config.murmur_home() / "seed" / f"{config.profile().name}.json"
    write_manifest(path, manifest(args, followees, threshold, random.Random(args.seed)))
    print(f"Load-test manifest: {path}")
    return 0 if accepted == len(user_ids) * args.tweets else 1


if __name__ == "__main__":
    sys.exit(main())

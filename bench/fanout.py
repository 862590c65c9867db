"""Fan-out write benchmark: how fast one tweet reaches 10,000 home timelines, and how many
Redis bytes one home-timeline entry costs.

    MURMUR_PROFILE=test .venv/bin/python bench/fanout.py [--followers 10000] [--rounds 5]

It writes to the profile's Redis database under follower ids far above any real id and
deletes every key it made. It prints figures and asserts nothing about time: compare
`HomeTimelines.deliver` with the baseline measured in the same run (a plain pipelined
ZADD + ZREMRANGEBYRANK per follower, what a straightforward fan-out would send).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import redis  # noqa: E402

from common import config, home_timeline  # noqa: E402
from common.home_timeline import HomeTimelines, encode, key  # noqa: E402

# Follower ids in a range no Snowflake id reaches for decades, so real data is untouched.
FOLLOWER_BASE = 1 << 62


def baseline_deliver(client: redis.Redis, tweet_id: int, user_ids: list[int], cap: int) -> None:
    """One ZADD and one trim per follower, all in one non-transactional pipeline."""
    member = encode(tweet_id)
    pipe = client.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.zadd(key(user_id), {member: 0})
        pipe.zremrangebyrank(key(user_id), 0, -(cap + 1))
    pipe.execute()


def fill(client: redis.Redis, user_ids: list[int], entries: int, first_tweet: int) -> None:
    """Give each timeline `entries` older tweets (the state a fan-out usually meets).

    One timeline is built with the module's own writes, then copied byte for byte with
    DUMP/RESTORE: building thousands of timelines entry by entry would take minutes.
    """
    template = HomeTimelines(client, cap=entries)
    template.add(user_ids[0], range(first_tweet, first_tweet + entries))
    payload = client.dump(key(user_ids[0]))
    pipe = client.pipeline(transaction=False)
    for n, user_id in enumerate(user_ids[1:], 1):
        pipe.restore(key(user_id), 0, payload, replace=True)
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()


def drop(client: redis.Redis, user_ids: list[int]) -> None:
    for start in range(0, len(user_ids), 1000):
        client.unlink(*[key(u) for u in user_ids[start:start + 1000]])


def measure(rounds: int, prepare: Callable[[], None], run: Callable[[int], None],
            followers: int) -> tuple[float, float]:
    """Median and best deliveries/s over `rounds` runs, each on freshly prepared timelines."""
    rates = []
    for r in range(rounds):
        prepare()
        started = time.perf_counter()
        run(r)
        rates.append(followers / (time.perf_counter() - started))
    return statistics.median(rates), max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    stores = config.stores()
    cap = config.home_timeline_cap()
    client = redis.Redis.from_url(stores.redis_url, socket_timeout=30)
    timelines = HomeTimelines(client, cap=cap)
    base = FOLLOWER_BASE + random.randrange(1 << 40)
    user_ids = list(range(base, base + args.followers))
    tweet = 1 << 60  # newer than every tweet `fill` writes
    print(f"redis {stores.redis_url} · {args.followers} followers · cap {cap} · "
          f"{args.rounds} rounds · module {home_timeline.__name__}")

    states = {"empty timelines": 0, "timelines holding 200": 200, f"full timelines ({cap})": cap}
    try:
        for state, entries in states.items():
            def prepare(entries: int = entries) -> None:
                drop(client, user_ids)
                if entries:
                    fill(client, user_ids, entries, first_tweet=1)

            median_b, best_b = measure(args.rounds, prepare,
                                       lambda r: baseline_deliver(client, tweet + r, user_ids,
                                                                  cap), args.followers)
            median_h, best_h = measure(args.rounds, prepare,
                                       lambda r: timelines.deliver(tweet + r, user_ids),
                                       args.followers)
            print(f"{state:>24}: HomeTimelines.deliver {median_h:>11,.0f}/s (best "
                  f"{best_h:,.0f}) · baseline pipelined ZADD {median_b:>11,.0f}/s (best "
                  f"{best_b:,.0f}) · ratio {median_h / median_b:.2f}x")

        drop(client, user_ids[:1])
        fill(client, user_ids[:1], cap, first_tweet=1)
        size = timelines.size(user_ids[0])
        used = client.memory_usage(key(user_ids[0]), samples=0)
        encoding = client.object("encoding", key(user_ids[0]))
        print(f"{'memory':>24}: {used} bytes for {size} entries = {used / size:.1f} bytes per "
              f"entry (encoding {encoding.decode() if isinstance(encoding, bytes) else encoding})")
    finally:
        drop(client, user_ids)


if __name__ == "__main__":
    main()

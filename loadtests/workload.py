"""The workload: who the virtual users are, how busy each is, and what they do.

Accounts come from the manifest `make seed` writes (`var/seed/<profile>.json`): a sample of
the seeded accounts with their follower and following counts and a role, plus pairs of an
author and one of their followers for the freshness measurement. Nothing here imports
Locust, so the choices are unit-tested on their own.

The mix follows DeathStarBench's social-network workload (60 % home-timeline reads, 30 %
user-timeline reads, 10 % posts), with the rest of a real client's traffic folded in at a
few percent: second pages (next_cursor), profile views, single tweets, follow/unfollow
churn and deletes.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

# Route templates: every request is named by its route, never by its URL.
HOME = "/timeline"
HOME_PAGE_2 = "/timeline?cursor=[cursor]"
USER_TWEETS = "/users/[name]/tweets"
USER_TWEETS_PAGE_2 = "/users/[name]/tweets?cursor=[cursor]"
PROFILE = "/users/[name]"
TWEET = "/tweets/[id]"
TWEETS = "/tweets"
FOLLOWING = "/users/me/following/[name]"
SESSIONS = "/sessions"
# The freshness user's own requests, kept apart from the mix's.
FRESH_POST = "/tweets (freshness)"
FRESH_POLL = "/timeline (freshness poll)"
FRESH_FANOUT = "post->visible (fan-out)"
FRESH_CELEBRITY = "post->visible (celebrity merge)"

# task -> weight, out of 100. (method, route) pairs each task requests are in MIX_ROUTES.
MIX = {
    "home": 52, "home_page_2": 6,  # 58 % home timeline
    "user_tweets": 25, "user_tweets_page_2": 3,  # 28 % user timelines
    "post": 9, "delete": 1,  # 10 % writes of tweets
    "profile": 2, "tweet": 1, "follow_churn": 1,
}
MIX_ROUTES = (
    ("GET", HOME), ("GET", HOME_PAGE_2), ("GET", USER_TWEETS), ("GET", USER_TWEETS_PAGE_2),
    ("POST", TWEETS), ("DELETE", TWEET), ("GET", PROFILE), ("GET", TWEET),
    ("PUT", FOLLOWING), ("DELETE", FOLLOWING),
)

# Share of virtual users taking each role's accounts (when the manifest has them).
ROLE_SHARES = {"celebrity": 0.05, "heavy": 0.20, "regular": 0.75}

WORDS = ("fanout timeline latency kafka cassandra redis nginx gateway replica partition quorum "
         "cache breaker retry deadline trace outbox idempotent shard backpressure jitter "
         "throughput celebrity follower load locust percentile").split()


class ManifestError(RuntimeError):
    """No usable seed manifest."""


@dataclass(frozen=True)
class Account:
    username: str
    followers: int
    following: int
    role: str  # celebrity | heavy | regular


@dataclass(frozen=True)
class Manifest:
    profile: str
    password: str
    celebrity_threshold: int
    users: int
    accounts: tuple[Account, ...]
    fanout_pairs: tuple[tuple[str, str], ...]  # (author under the threshold, a follower)
    celebrity_pairs: tuple[tuple[str, str], ...]  # (author over it, a follower)

    def by_role(self, role: str) -> list[Account]:
        return [a for a in self.accounts if a.role == role]

    @cached_property
    def viewed(self) -> tuple[list[Account], list[float]]:
        """Every account, with cumulative weights 1 + followers (popular ones are viewed
        more); computed once, so a pick costs a bisection."""
        return _weighted(self.accounts, lambda a: 1 + a.followers)

    @cached_property
    def churnable(self) -> tuple[list[Account], list[float]]:
        """Accounts churn may follow: all but the freshness authors."""
        authors = {a for a, _ in self.fanout_pairs} | {a for a, _ in self.celebrity_pairs}
        return _weighted([a for a in self.accounts if a.username not in authors] or
                         self.accounts, lambda a: 1 + a.followers)


def _weighted(accounts, weight) -> tuple[list[Account], list[float]]:
    accounts = list(accounts)
    return accounts, list(itertools.accumulate(weight(a) for a in accounts))


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"no seed manifest at {path}: seed the target first (`make seed`)")
    try:
        data = json.loads(path.read_text())
        accounts = tuple(Account(a["username"], int(a["followers"]), int(a["following"]),
                                 a["role"]) for a in data["accounts"])
        manifest = Manifest(data["profile"], data["password"], int(data["celebrity_threshold"]),
                            int(data["users"]), accounts,
                            tuple(tuple(p) for p in data["fanout_pairs"]),
                            tuple(tuple(p) for p in data["celebrity_pairs"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path} is not a seed manifest ({exc!r}): run `make seed` again")
    if not manifest.accounts:
        raise ManifestError(f"{path} lists no accounts: run `make seed` again")
    return manifest


def pick_account(manifest: Manifest, rng: random.Random) -> Account:
    """An account for a new virtual user: by role share, then by activity within the role.

    Within a role, accounts that follow more are picked more often: a heavy reader's home
    timeline is the expensive one, and heavy readers are the ones online most.
    """
    roles = [r for r in ROLE_SHARES if manifest.by_role(r)]
    role = rng.choices(roles, weights=[ROLE_SHARES[r] for r in roles])[0]
    candidates = manifest.by_role(role)
    return rng.choices(candidates, weights=[1 + a.following for a in candidates])[0]


def pick_author(manifest: Manifest, rng: random.Random) -> Account:
    """An author whose timeline or profile someone views: popular accounts are viewed more."""
    accounts, cumulative = manifest.viewed
    return rng.choices(accounts, cum_weights=cumulative)[0]


def churn_target(manifest: Manifest, rng: random.Random, me: str) -> Account:
    """Whom a user follows (and next turn unfollows) as churn: anyone but themselves and the
    freshness authors. A churn unfollow may remove a seeded follow the user already had;
    keeping the freshness authors out means it never breaks a pair being measured."""
    accounts, cumulative = manifest.churnable
    for _ in range(100):
        account = rng.choices(accounts, cum_weights=cumulative)[0]
        if account.username != me:
            return account
    raise ValueError(f"no account for {me} to follow: the manifest lists only them")


def activity(rng: random.Random, alpha: float = 1.5, low: float = 0.25,
             high: float = 8.0) -> float:
    """How busy one virtual user is, relative to the mean think time: a Pareto draw with
    mean 1, so a few users are very busy and most are light. The draw is clipped to
    [low, high] (the tail of a Pareto is unbounded), then scaled so the mean stays 1."""
    scale = (alpha - 1) / alpha  # the smallest draw; the unclipped mean is then 1
    clipped_mean = 1 - scale ** alpha * high ** (1 - alpha) / (alpha - 1)
    return min(high, max(low, rng.paretovariate(alpha) * scale)) / clipped_mean


def think_time(rng: random.Random, mean: float, busy: float) -> float:
    """Seconds to wait before the next action: exponential (Poisson arrivals) around
    mean/busy, capped so a light user still acts now and then."""
    return min(rng.expovariate(busy / mean) if mean > 0 else 0.0, 10 * mean)


def tweet_text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20)))[:280]


def idempotency_key() -> str:
    return f"load-{uuid.uuid4().hex}"

"""In-memory ports of the users use cases, shared by the users unit tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from users.domain.errors import SignupKeyTaken, StoreUnavailable, UsernameTaken
from users.domain.events import UserFollowed, UserRegistered, UserUnfollowed
from users.domain.model import Credentials, Position, Session, User
from users.service_layer.ports import Ports

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)


class MemoryUsers:
    """UserRepository in memory; records the events (with their trace) a real store
    would put in its outbox, in the same step as the change."""

    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}
        self.follows: dict[tuple[int, int], datetime] = {}
        self.outbox: list[tuple[object, dict]] = []
        self.signup_keys: dict[str, int] = {}
        self.clock = itertools.count()

    @property
    def events(self) -> list[object]:
        return [event for event, _ in self.outbox]

    def down_for(self):
        return 0

    def _now(self) -> datetime:
        return T0 + timedelta(seconds=next(self.clock))

    def add(self, event: UserRegistered, password_hash, trace, signup_key=None):
        if any(r["username"] == event.username for r in self.rows.values()):
            raise UsernameTaken(event.username)
        if signup_key is not None:
            if signup_key in self.signup_keys:
                raise SignupKeyTaken()
            self.signup_keys[signup_key] = event.user_id
        self.rows[event.user_id] = {
            "id": event.user_id, "username": event.username, "display_name": event.display_name,
            "bio": "", "followers_count": 0, "following_count": 0, "version": event.version,
            "created_at": self._now(), "hash": password_hash}
        self.outbox.append((event, dict(trace)))
        return self.by_id(event.user_id)

    def by_signup_key(self, key):
        return self.by_id(self.signup_keys[key]) if key in self.signup_keys else None

    def _user(self, row) -> User:
        return User(**{k: v for k, v in row.items() if k != "hash"})

    def by_id(self, user_id):
        return self._user(self.rows[user_id]) if user_id in self.rows else None

    def by_username(self, username):
        return next((self._user(r) for r in self.rows.values() if r["username"] == username), None)

    def credentials(self, username):
        row = next((r for r in self.rows.values() if r["username"] == username), None)
        return Credentials(row["id"], row["username"], row["hash"]) if row else None

    def set_password_hash(self, user_id, password_hash):
        self.rows[user_id]["hash"] = password_hash

    def update_profile(self, user_id, expected_versions, changes, announce, trace):
        row = self.rows.get(user_id)
        if row is None or (expected_versions is not None
                           and row["version"] not in expected_versions):
            return None
        row.update(changes, version=row["version"] + 1)
        user = self._user(row)
        self.outbox.append((announce(user), dict(trace)))
        return user

    def follow(self, event: UserFollowed, trace):
        pair = (event.follower_id, event.followee_id)
        if pair in self.follows:
            return False
        self.follows[pair] = self._now()
        self.rows[event.follower_id]["following_count"] += 1
        self.rows[event.followee_id]["followers_count"] += 1
        self.outbox.append((event, dict(trace)))
        return True

    def unfollow(self, event: UserUnfollowed, trace):
        pair = (event.follower_id, event.followee_id)
        if self.follows.pop(pair, None) is None:
            return False
        self.rows[event.follower_id]["following_count"] -= 1
        self.rows[event.followee_id]["followers_count"] -= 1
        self.outbox.append((event, dict(trace)))
        return True

    def _page(self, pairs, after, limit):
        rows = sorted(((at, other) for other, at in pairs), reverse=True)
        if after is not None:
            rows = [r for r in rows if r < (after.followed_at, after.user_id)]
        return [(self.by_id(o), Position(at, o)) for at, o in rows[:limit]]

    def followers(self, user_id, after, limit):
        return self._page([(f, at) for (f, e), at in self.follows.items() if e == user_id],
                          after, limit)

    def following(self, user_id, after, limit):
        return self._page([(e, at) for (f, e), at in self.follows.items() if f == user_id],
                          after, limit)

    def follower_ids(self, user_id, after, limit):
        ids = sorted(f for (f, e) in self.follows if e == user_id and f > (after or 0))
        return ids[:limit]

    def followee_ids(self, user_id, min_followers, limit, pulled=False):
        ids = sorted(e for (f, e) in self.follows
                     if f == user_id and (self.rows[e]["followers_count"] >= min_followers
                                          or pulled and self.rows[e].get("ever_celebrity")))
        return ids[:limit]


class Outage:
    """A UserRepository whose database is down: every call fails as the adapter's would.

    `breaker_open` says whether the breaker already knows (calls refused at once) or not
    (the next call is tried, and fails). Calls tried are recorded."""

    def __init__(self, breaker_open: bool, retry_after: int = 4) -> None:
        self.breaker_open, self.retry_after = breaker_open, retry_after
        self.tried: list[str] = []

    def down_for(self):
        return self.retry_after if self.breaker_open else 0

    def __getattr__(self, name):
        def fail(*_args, **_kwargs):
            self.tried.append(name)
            raise StoreUnavailable(self.retry_after if self.breaker_open else 1)
        return fail


class MemoryCache:
    def __init__(self) -> None:
        self.profiles: dict[int, User] = {}
        self.names: dict[str, int] = {}

    def get(self, user_id):
        return self.profiles.get(user_id)

    def id_for(self, username):
        return self.names.get(username)

    def put(self, users):
        for user in users:
            self.profiles[user.id] = user
            self.names[user.username] = user.id

    def forget(self, *user_ids):
        for user_id in user_ids:
            self.profiles.pop(user_id, None)


class PlainPasswords:
    """Reversible 'hashing' that records how often verify ran."""

    dummy_hash = "hash:dummy"

    def __init__(self) -> None:
        self.verified: list[str] = []
        self.outdated: set[str] = set()

    def hash(self, password):
        return f"hash:{password}"

    def verify(self, password_hash, password):
        self.verified.append(password_hash)
        return password_hash in (f"hash:{password}", f"old:{password}")

    def needs_rehash(self, password_hash):
        return password_hash in self.outdated


class CountingIds:
    def __init__(self) -> None:
        self._next = itertools.count(1000).__next__

    def next_id(self):
        return self._next()


class MemorySignIns:
    """SignInThrottle in memory: failures per account and address, no windows (a test
    that wants them to pass clears `failures`)."""

    def __init__(self, account_failures: int = 5, address_failures: int = 20,
                 retry_in: int = 60) -> None:
        self.limits = {"account": account_failures, "address": address_failures}
        self.retry_in = retry_in
        self.failures: dict[tuple[str, str], int] = {}

    def _keys(self, username, client):
        return [("account", username)] + ([("address", client)] if client else [])

    def wait_for(self, username, client):
        over = any(self.failures.get(key, 0) >= self.limits[key[0]]
                   for key in self._keys(username, client))
        return self.retry_in if over else 0

    def failed(self, username, client):
        for key in self._keys(username, client):
            self.failures[key] = self.failures.get(key, 0) + 1

    def succeeded(self, username):
        self.failures.pop(("account", username), None)


class FakeTokens:
    def issue(self, user_id, username):
        return Session(f"token-for-{user_id}-{username}", 3600)


def memory_ports() -> Ports:
    """Fresh in-memory ports."""
    return Ports(users=MemoryUsers(), profiles=MemoryCache(), passwords=PlainPasswords(),
                 tokens=FakeTokens(), ids=CountingIds(), sign_ins=MemorySignIns())

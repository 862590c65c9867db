"""Users domain rules and use cases, against in-memory ports."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from common.problems import Problem
from users import domain
from users.domain import (
    Credentials,
    FollowUser,
    Ports,
    Position,
    RegisterUser,
    Session,
    StartSession,
    UnfollowUser,
    UpdateProfile,
    User,
    UserFollowed,
    UserUnfollowed,
)

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)


class MemoryUsers:
    """UserRepository in memory; records the events a real store would put in its outbox."""

    def down_for(self):
        return 0

    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}
        self.follows: dict[tuple[int, int], datetime] = {}
        self.outbox: list[object] = []
        self.clock = itertools.count()

    def _now(self) -> datetime:
        return T0 + timedelta(seconds=next(self.clock))

    def add(self, user_id, username, display_name, password_hash):
        if any(r["username"] == username for r in self.rows.values()):
            raise domain.UsernameTaken(username)
        self.rows[user_id] = {"id": user_id, "username": username, "display_name": display_name,
                              "bio": "", "followers_count": 0, "following_count": 0,
                              "version": 1, "created_at": self._now(), "hash": password_hash}
        return self.by_id(user_id)

    def _user(self, row) -> User:
        return User(**{k: v for k, v in row.items() if k != "hash"})

    def by_id(self, user_id):
        return self._user(self.rows[user_id]) if user_id in self.rows else None

    def by_username(self, username):
        return next((self._user(r) for r in self.rows.values() if r["username"] == username), None)

    def by_ids(self, user_ids):
        return [self._user(self.rows[u]) for u in user_ids if u in self.rows]

    def credentials(self, username):
        row = next((r for r in self.rows.values() if r["username"] == username), None)
        return Credentials(row["id"], row["username"], row["hash"]) if row else None

    def set_password_hash(self, user_id, password_hash):
        self.rows[user_id]["hash"] = password_hash

    def update_profile(self, user_id, expected_version, changes):
        row = self.rows.get(user_id)
        if row is None or expected_version not in (None, row["version"]):
            return None
        row.update(changes, version=row["version"] + 1)
        return self._user(row)

    def follow(self, event: UserFollowed):
        pair = (event.follower_id, event.followee_id)
        if pair in self.follows:
            return False
        self.follows[pair] = self._now()
        self.rows[event.follower_id]["following_count"] += 1
        self.rows[event.followee_id]["followers_count"] += 1
        self.outbox.append(event)
        return True

    def unfollow(self, event: UserUnfollowed):
        pair = (event.follower_id, event.followee_id)
        if self.follows.pop(pair, None) is None:
            return False
        self.rows[event.follower_id]["following_count"] -= 1
        self.rows[event.followee_id]["followers_count"] -= 1
        self.outbox.append(event)
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

    def followee_ids(self, user_id, min_followers, limit):
        ids = sorted(e for (f, e) in self.follows
                     if f == user_id and self.rows[e]["followers_count"] >= min_followers)
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
            raise domain.DatabaseUnavailable(self.retry_after if self.breaker_open else 1)
        return fail


class MemoryCache:
    def __init__(self) -> None:
        self.profiles: dict[int, User] = {}
        self.names: dict[str, int] = {}

    def get(self, user_id):
        return self.profiles.get(user_id)

    def get_many(self, user_ids):
        return {u: self.profiles[u] for u in user_ids if u in self.profiles}

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


class FakeTokens:
    def issue(self, user_id, username):
        return Session(f"token-for-{user_id}-{username}", 3600)


@pytest.fixture
def ports() -> Ports:
    return Ports(users=MemoryUsers(), profiles=MemoryCache(), passwords=PlainPasswords(),
                 tokens=FakeTokens(), ids=CountingIds())


def register(ports: Ports, username: str, password: str = "correct horse") -> User:
    return domain.register_user(RegisterUser(username, password), ports)


def field_errors(exc: pytest.ExceptionInfo) -> set[str]:
    return {e["field"] for e in exc.value.errors}


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize("name", ["abc", "a_b_c", "user_123", "x" * 30, "000"])
def test_usernames_of_lowercase_letters_digits_and_underscores_are_accepted(name):
    assert domain.username_errors(name) == []


@pytest.mark.parametrize("name", ["ab", "x" * 31, "Alice", "al-ice", "al ice", "alice\n",
                                  "élan", "", None, 42])
def test_other_usernames_are_rejected(name):
    assert [e["field"] for e in domain.username_errors(name)] == ["username"]


@pytest.mark.parametrize("password,ok", [("a" * 7, False), ("a" * 8, True), ("a" * 128, True),
                                         ("a" * 129, False), (None, False), (12345678, False)])
def test_passwords_must_be_8_to_128_characters(password, ok):
    assert (domain.password_errors(password) == []) is ok


def test_display_name_and_bio_have_length_limits():
    assert domain.profile_change_errors({"display_name": "d" * 50, "bio": "b" * 160}) == []
    errors = domain.profile_change_errors({"display_name": "d" * 51, "bio": "b" * 161})
    assert {e["field"] for e in errors} == {"display_name", "bio"}


def test_a_profile_edit_may_not_touch_other_fields_or_use_non_strings():
    errors = domain.profile_change_errors({"username": "new", "bio": None})
    assert {e["field"] for e in errors} == {"username", "bio"}


# ---------------------------------------------------------------------- registration


def test_registering_defaults_the_display_name_to_the_username(ports):
    user = register(ports, "alice")
    assert (user.username, user.display_name, user.version) == ("alice", "alice", 1)
    assert ports.users.credentials("alice").password_hash == "hash:correct horse"


def test_registering_a_taken_username_is_a_409(ports):
    register(ports, "alice")
    with pytest.raises(domain.UsernameTaken) as exc:
        register(ports, "alice")
    assert exc.value.status == 409


def test_registering_with_invalid_fields_reports_every_field(ports):
    with pytest.raises(Problem) as exc:
        domain.register_user(RegisterUser("A!", "short", "d" * 51), ports)
    assert exc.value.status == 422
    assert field_errors(exc) == {"username", "password", "display_name"}


# --------------------------------------------------------------------------- sessions


def test_a_correct_password_starts_a_session(ports):
    user = register(ports, "alice")
    session = domain.start_session(StartSession("alice", "correct horse"), ports)
    assert session.access_token == f"token-for-{user.id}-alice"
    assert session.token_type == "Bearer"


def test_a_wrong_password_is_a_401(ports):
    register(ports, "alice")
    with pytest.raises(domain.InvalidCredentials) as exc:
        domain.start_session(StartSession("alice", "wrong horse"), ports)
    assert exc.value.status == 401


def test_an_unknown_username_still_costs_a_password_verification(ports):
    with pytest.raises(domain.InvalidCredentials):
        domain.start_session(StartSession("nobody", "whatever1"), ports)
    assert ports.passwords.verified == [ports.passwords.dummy_hash]


def test_an_outdated_hash_is_upgraded_at_login(ports):
    user = register(ports, "alice")
    ports.passwords.outdated.add("old:correct horse")
    ports.users.set_password_hash(user.id, "old:correct horse")
    domain.start_session(StartSession("alice", "correct horse"), ports)
    assert ports.users.rows[user.id]["hash"] == "hash:correct horse"


def test_a_session_request_without_strings_is_a_422(ports):
    with pytest.raises(Problem) as exc:
        domain.start_session(StartSession(None, 5), ports)
    assert exc.value.status == 422 and field_errors(exc) == {"username", "password"}


# ---------------------------------------------------------------------------- profile


def test_an_edit_at_the_current_version_bumps_the_version(ports):
    user = register(ports, "alice")
    updated = domain.update_profile(UpdateProfile(user.id, 1, {"bio": "hello"}), ports)
    assert (updated.bio, updated.version) == ("hello", 2)


def test_an_edit_at_a_stale_version_is_a_412_and_changes_nothing(ports):
    user = register(ports, "alice")
    domain.update_profile(UpdateProfile(user.id, 1, {"bio": "first"}), ports)
    with pytest.raises(domain.VersionMismatch) as exc:
        domain.update_profile(UpdateProfile(user.id, 1, {"bio": "second"}), ports)
    assert exc.value.status == 412
    assert ports.users.by_id(user.id).bio == "first"


def test_an_edit_drops_the_cached_profile(ports):
    user = register(ports, "alice")
    domain.find_user("alice", ports)
    assert ports.profiles.get(user.id) is not None
    domain.update_profile(UpdateProfile(user.id, 1, {"display_name": "Alice"}), ports)
    assert ports.profiles.get(user.id) is None
    assert domain.find_user("alice", ports).display_name == "Alice"


def test_reads_are_served_from_the_cache_once_filled(ports):
    user = register(ports, "alice")
    domain.find_user("alice", ports)
    ports.users.rows[user.id]["bio"] = "changed behind the cache's back"
    assert domain.find_user("alice", ports).bio == ""


def test_an_unknown_or_impossible_username_is_a_404(ports):
    for name in ("nobody", "NOT-A-NAME"):
        with pytest.raises(domain.UserNotFound):
            domain.find_user(name, ports)


# ------------------------------------------------------------------------------ graph


def test_a_second_follow_changes_nothing(ports):
    alice, bob = register(ports, "alice"), register(ports, "bob")
    assert domain.follow_user(FollowUser(alice.id, "bob"), ports) is True
    assert domain.follow_user(FollowUser(alice.id, "bob"), ports) is False
    assert ports.users.by_id(bob.id).followers_count == 1
    assert ports.users.by_id(alice.id).following_count == 1
    assert ports.users.outbox == [UserFollowed(alice.id, bob.id)]


def test_following_yourself_is_a_422(ports):
    alice = register(ports, "alice")
    with pytest.raises(Problem) as exc:
        domain.follow_user(FollowUser(alice.id, "alice"), ports)
    assert exc.value.status == 422


def test_following_an_unknown_user_is_a_404(ports):
    alice = register(ports, "alice")
    with pytest.raises(domain.UserNotFound):
        domain.follow_user(FollowUser(alice.id, "nobody"), ports)


def test_unfollowing_twice_emits_one_event(ports):
    alice, bob = register(ports, "alice"), register(ports, "bob")
    domain.follow_user(FollowUser(alice.id, "bob"), ports)
    assert domain.unfollow_user(UnfollowUser(alice.id, "bob"), ports) is True
    assert domain.unfollow_user(UnfollowUser(alice.id, "bob"), ports) is False
    assert ports.users.outbox[-1] == UserUnfollowed(alice.id, bob.id)
    assert len(ports.users.outbox) == 2
    assert ports.users.by_id(bob.id).followers_count == 0


def test_a_follow_drops_both_cached_profiles(ports):
    alice, bob = register(ports, "alice"), register(ports, "bob")
    domain.show_users([alice.id, bob.id], ports)
    domain.follow_user(FollowUser(alice.id, "bob"), ports)
    assert ports.profiles.get(alice.id) is None and ports.profiles.get(bob.id) is None
    assert domain.find_user("bob", ports).followers_count == 1


def test_follower_lists_page_through_everyone_once(ports):
    star = register(ports, "star")
    fans = [register(ports, f"fan_{i}") for i in range(7)]
    for fan in fans:
        domain.follow_user(FollowUser(fan.id, "star"), ports)
    seen, after = [], None
    while True:
        page = domain.list_followers("star", after, 3, ports)
        seen += [u.id for u in page.users]
        if page.next is None:
            break
        after = page.next
    assert seen == [f.id for f in reversed(fans)]  # most recent follow first
    assert star.id not in seen


def test_follower_id_pages_say_where_to_continue(ports):
    star = register(ports, "star")
    fans = [register(ports, f"fan_{i}") for i in range(5)]
    for fan in fans:
        domain.follow_user(FollowUser(fan.id, "star"), ports)
    ids, next_after, count = domain.page_follower_ids(star.id, None, 3, ports)
    assert ids == sorted(f.id for f in fans)[:3] and next_after == ids[-1] and count == 5
    ids, next_after, _ = domain.page_follower_ids(star.id, next_after, 3, ports)
    assert len(ids) == 2 and next_after is None


def test_followee_ids_can_be_limited_to_popular_authors(ports):
    alice, star, nobody = register(ports, "alice"), register(ports, "star"), register(ports, "nobody")
    for name in ("star", "nobody"):
        domain.follow_user(FollowUser(alice.id, name), ports)
    domain.follow_user(FollowUser(nobody.id, "star"), ports)
    assert domain.list_followee_ids(alice.id, 2, 100, ports) == [star.id]
    assert sorted(domain.list_followee_ids(alice.id, 0, 100, ports)) == sorted([star.id, nobody.id])


def test_batch_lookup_leaves_unknown_ids_out_and_fills_the_cache(ports):
    alice = register(ports, "alice")
    found = domain.show_users([alice.id, 999_999, alice.id], ports)
    assert list(found.users) == [alice.id]
    assert found.unavailable == [] and found.degraded is None
    assert ports.profiles.get(alice.id) == alice


# --------------------------------------------------------------- database down


def cached_users_with_database_down(ports, breaker_open: bool) -> tuple[User, User, Outage]:
    """Alice cached, Bob not, then the database goes down."""
    alice, bob = register(ports, "alice"), register(ports, "bob")
    domain.find_user("alice", ports)
    outage = Outage(breaker_open)
    ports.users = outage
    return alice, bob, outage


def test_a_cached_profile_is_served_marked_degraded_while_the_breaker_is_open(ports):
    alice, _, outage = cached_users_with_database_down(ports, breaker_open=True)
    by_name = domain.show_user("alice", ports)
    by_id = domain.show_user_by_id(alice.id, ports)
    assert by_name == by_id == domain.Profile(alice, domain.PROFILE_FROM_CACHE)
    assert outage.tried == []


def test_an_uncached_profile_is_a_503_with_retry_after_while_the_breaker_is_open(ports):
    _, bob, outage = cached_users_with_database_down(ports, breaker_open=True)
    for read in (lambda: domain.show_user("bob", ports),
                 lambda: domain.show_user_by_id(bob.id, ports)):
        with pytest.raises(domain.DatabaseUnavailable) as exc:
            read()
        assert exc.value.status == 503 and exc.value.headers == {"Retry-After": "4"}
    assert outage.tried == []


def test_a_cache_hit_needs_no_database_so_it_is_not_marked_before_the_breaker_knows(ports):
    alice, _, outage = cached_users_with_database_down(ports, breaker_open=False)
    assert domain.show_user("alice", ports) == domain.Profile(alice)
    assert outage.tried == []


def test_a_miss_whose_query_fails_is_a_503(ports):
    _, bob, outage = cached_users_with_database_down(ports, breaker_open=False)
    with pytest.raises(domain.DatabaseUnavailable) as exc:
        domain.show_user_by_id(bob.id, ports)
    assert exc.value.headers == {"Retry-After": "1"}
    assert outage.tried == ["by_id"]


def test_an_impossible_username_is_still_a_404_while_the_database_is_down(ports):
    cached_users_with_database_down(ports, breaker_open=True)
    with pytest.raises(domain.UserNotFound):
        domain.show_user("NOT-A-NAME", ports)


@pytest.mark.parametrize("breaker_open", [True, False])
def test_a_batch_answers_what_is_cached_and_lists_the_rest_while_the_database_is_down(
        ports, breaker_open):
    alice, bob, outage = cached_users_with_database_down(ports, breaker_open)
    found = domain.show_users([alice.id, bob.id], ports)
    assert found == domain.Profiles({alice.id: alice}, [bob.id], domain.PROFILE_FROM_CACHE)
    assert outage.tried == ([] if breaker_open else ["by_ids"])


def test_a_fully_cached_batch_is_marked_degraded_while_the_breaker_is_open(ports):
    alice, _, _ = cached_users_with_database_down(ports, breaker_open=True)
    found = domain.show_users([alice.id], ports)
    assert found == domain.Profiles({alice.id: alice}, [], domain.PROFILE_FROM_CACHE)


def test_every_write_fails_at_once_without_trying_while_the_breaker_is_open(ports):
    alice, bob, outage = cached_users_with_database_down(ports, breaker_open=True)
    ids_before = ports.ids.next_id()
    writes = [
        lambda: register(ports, "carol"),
        lambda: domain.start_session(StartSession("alice", "correct horse"), ports),
        lambda: domain.update_profile(UpdateProfile(alice.id, 1, {"bio": "x"}), ports),
        lambda: domain.follow_user(FollowUser(alice.id, "bob"), ports),
        lambda: domain.unfollow_user(UnfollowUser(alice.id, "bob"), ports),
    ]
    for write in writes:
        with pytest.raises(domain.DatabaseUnavailable) as exc:
            write()
        assert exc.value.status == 503 and exc.value.headers == {"Retry-After": "4"}
    assert outage.tried == []
    assert ports.passwords.verified == []  # no password work either
    assert ports.ids.next_id() == ids_before + 1  # and no id spent


def test_invalid_input_is_still_a_422_while_the_database_is_down(ports):
    cached_users_with_database_down(ports, breaker_open=True)
    with pytest.raises(Problem) as exc:
        register(ports, "X")
    assert exc.value.status == 422


def test_follower_and_followee_ids_are_a_503_while_the_database_is_down(ports):
    alice, _, _ = cached_users_with_database_down(ports, breaker_open=True)
    with pytest.raises(domain.DatabaseUnavailable):
        domain.page_follower_ids(alice.id, None, 10, ports)
    with pytest.raises(domain.DatabaseUnavailable):
        domain.list_followee_ids(alice.id, 0, 10, ports)

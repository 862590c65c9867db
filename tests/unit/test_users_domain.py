"""Users use cases and rules, against in-memory ports."""

from __future__ import annotations

import pytest

from common.rules import InvalidInput
from unit._users_fakes import Outage, memory_ports
from users.domain.commands import (
    FollowUser,
    RegisterUser,
    StartSession,
    UnfollowUser,
    UpdateProfile,
)
from users.domain.errors import (
    InvalidCredentials,
    StoreUnavailable,
    UsernameTaken,
    UserNotFound,
    VersionMismatch,
)
from users.domain.events import ProfileChanged, UserFollowed, UserRegistered, UserUnfollowed
from users.domain.model import PROFILE_FROM_CACHE, Profile, User, profile_change_errors
from users.service_layer import handlers
from users.service_layer.ports import Ports

TRACE = {"request_id": "r-1", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


@pytest.fixture
def ports() -> Ports:
    return memory_ports()


def register(ports: Ports, username: str, password: str = "correct horse", **extra) -> User:
    return handlers.register_user(RegisterUser(username, password, **extra), ports)


def at(*versions: int) -> frozenset[int]:
    """The profile versions an edit is conditional on (If-Match)."""
    return frozenset(versions)


def field_errors(exc: pytest.ExceptionInfo) -> set[str]:
    return {e["field"] for e in exc.value.errors}


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize("name", ["abc", "a_b_c", "user_123", "x" * 30, "000"])
def test_usernames_of_lowercase_letters_digits_and_underscores_are_accepted(ports, name):
    assert register(ports, name).username == name


@pytest.mark.parametrize("name", ["ab", "x" * 31, "Alice", "al-ice", "al ice", "alice\n",
                                  "élan", "", None, 42])
def test_other_usernames_are_rejected(ports, name):
    with pytest.raises(InvalidInput) as exc:
        register(ports, name)
    assert field_errors(exc) == {"username"}


@pytest.mark.parametrize("password,ok", [("a" * 7, False), ("a" * 8, True), ("a" * 128, True),
                                         ("a" * 129, False), (None, False), (12345678, False)])
def test_passwords_must_be_8_to_128_characters(ports, password, ok):
    try:
        register(ports, "alice", password)
    except InvalidInput as exc:
        assert not ok and {e["field"] for e in exc.errors} == {"password"}
    else:
        assert ok


def test_display_name_and_bio_have_length_limits():
    assert profile_change_errors({"display_name": "d" * 50, "bio": "b" * 160}) == []
    errors = profile_change_errors({"display_name": "d" * 51, "bio": "b" * 161})
    assert {e["field"] for e in errors} == {"display_name", "bio"}


def test_a_profile_edit_may_not_touch_other_fields_or_use_non_strings_or_nul():
    errors = profile_change_errors({"username": "new", "bio": None, "display_name": "a\x00b"})
    assert {e["field"] for e in errors} == {"username", "bio", "display_name"}


# ---------------------------------------------------------------------- registration


def test_registering_defaults_the_display_name_to_the_username(ports):
    user = register(ports, "alice")
    assert (user.username, user.display_name, user.version) == ("alice", "alice", 1)
    assert ports.users.credentials("alice").password_hash == "hash:correct horse"


def test_registering_announces_the_user_with_its_trace(ports):
    alice = handlers.register_user(RegisterUser("alice", "correct horse", trace=TRACE), ports)
    bob = register(ports, "bob", display_name="Bob B.")
    assert ports.users.outbox == [
        (UserRegistered(alice.id, "alice", "alice", 1), TRACE),
        (UserRegistered(bob.id, "bob", "Bob B.", 1), {}),
    ]


def test_registering_a_taken_username_is_refused_and_announces_nothing_more(ports):
    register(ports, "alice")
    with pytest.raises(UsernameTaken) as exc:
        register(ports, "alice")
    assert exc.value.username == "alice"
    assert len(ports.users.outbox) == 1


def test_registering_with_invalid_fields_reports_every_field(ports):
    with pytest.raises(InvalidInput) as exc:
        handlers.register_user(RegisterUser("A!", "short", "d" * 51), ports)
    assert field_errors(exc) == {"username", "password", "display_name"}
    assert ports.users.outbox == []


# --------------------------------------------------------------------------- sessions


def test_a_correct_password_starts_a_session(ports):
    user = register(ports, "alice")
    session = handlers.start_session(StartSession("alice", "correct horse"), ports)
    assert session.access_token == f"token-for-{user.id}-alice"
    assert session.token_type == "Bearer"


def test_a_wrong_password_is_refused(ports):
    register(ports, "alice")
    with pytest.raises(InvalidCredentials):
        handlers.start_session(StartSession("alice", "wrong horse"), ports)


def test_an_unknown_username_still_costs_a_password_verification(ports):
    with pytest.raises(InvalidCredentials):
        handlers.start_session(StartSession("nobody", "whatever1"), ports)
    assert ports.passwords.verified == [ports.passwords.dummy_hash]


def test_an_outdated_hash_is_upgraded_at_login(ports):
    user = register(ports, "alice")
    ports.passwords.outdated.add("old:correct horse")
    ports.users.set_password_hash(user.id, "old:correct horse")
    handlers.start_session(StartSession("alice", "correct horse"), ports)
    assert ports.users.rows[user.id]["hash"] == "hash:correct horse"


def test_a_session_request_without_strings_is_invalid_input(ports):
    with pytest.raises(InvalidInput) as exc:
        handlers.start_session(StartSession(None, 5), ports)
    assert field_errors(exc) == {"username", "password"}


# ---------------------------------------------------------------------------- profile


def test_an_edit_at_the_current_version_bumps_the_version(ports):
    user = register(ports, "alice")
    updated = handlers.update_profile(UpdateProfile(user.id, at(1), {"bio": "hello"}), ports)
    assert (updated.bio, updated.version) == ("hello", 2)


def test_an_edit_announces_the_profile_at_its_new_version(ports):
    user = register(ports, "alice")
    handlers.update_profile(UpdateProfile(user.id, at(1), {"display_name": "Alice"}, TRACE), ports)
    handlers.update_profile(UpdateProfile(user.id, None, {"bio": "only the bio"}), ports)
    assert ports.users.outbox[1:] == [
        (ProfileChanged(user.id, "alice", "Alice", 2), TRACE),
        (ProfileChanged(user.id, "alice", "Alice", 3), {}),
    ]


def test_an_empty_edit_or_a_refused_one_announces_nothing(ports):
    user = register(ports, "alice")
    assert handlers.update_profile(UpdateProfile(user.id, at(1), {}), ports).version == 1
    with pytest.raises(VersionMismatch):
        handlers.update_profile(UpdateProfile(user.id, at(7), {"bio": "x"}), ports)
    with pytest.raises(InvalidInput):
        handlers.update_profile(UpdateProfile(user.id, at(1), {"bio": "b" * 161}), ports)
    assert ports.users.events == [UserRegistered(user.id, "alice", "alice", 1)]


def test_an_edit_goes_through_when_any_of_the_versions_it_names_is_current(ports):
    user = register(ports, "alice")
    updated = handlers.update_profile(UpdateProfile(user.id, at(7, 1), {"bio": "hi"}), ports)
    assert updated.version == 2
    with pytest.raises(VersionMismatch):
        handlers.update_profile(UpdateProfile(user.id, at(7, 1), {"bio": "again"}), ports)


def test_an_edit_at_a_stale_version_is_refused_and_changes_nothing(ports):
    user = register(ports, "alice")
    handlers.update_profile(UpdateProfile(user.id, at(1), {"bio": "first"}), ports)
    with pytest.raises(VersionMismatch) as exc:
        handlers.update_profile(UpdateProfile(user.id, at(1), {"bio": "second"}), ports)
    assert exc.value.current == 2
    assert ports.users.by_id(user.id).bio == "first"


def test_an_edit_of_an_unknown_user_is_not_found(ports):
    with pytest.raises(UserNotFound):
        handlers.update_profile(UpdateProfile(424242, None, {"bio": "x"}), ports)


def test_an_edit_drops_the_cached_profile(ports):
    user = register(ports, "alice")
    handlers.find_user("alice", ports)
    assert ports.profiles.get(user.id) is not None
    handlers.update_profile(UpdateProfile(user.id, at(1), {"display_name": "Alice"}), ports)
    assert ports.profiles.get(user.id) is None
    assert handlers.find_user("alice", ports).display_name == "Alice"


def test_reads_are_served_from_the_cache_once_filled(ports):
    user = register(ports, "alice")
    handlers.find_user("alice", ports)
    ports.users.rows[user.id]["bio"] = "changed behind the cache's back"
    assert handlers.find_user("alice", ports).bio == ""


def test_an_unknown_or_impossible_username_is_not_found(ports):
    for name in ("nobody", "NOT-A-NAME"):
        with pytest.raises(UserNotFound):
            handlers.find_user(name, ports)


# ------------------------------------------------------------------------------ graph


def test_a_second_follow_changes_nothing(ports):
    alice, bob = register(ports, "alice"), register(ports, "bob")
    assert handlers.follow_user(FollowUser(alice.id, "bob", TRACE), ports) is True
    assert handlers.follow_user(FollowUser(alice.id, "bob"), ports) is False
    assert ports.users.by_id(bob.id).followers_count == 1
    assert ports.users.by_id(alice.id).following_count == 1
    assert ports.users.outbox[2:] == [(UserFollowed(alice.id, bob.id), TRACE)]


def test_following_yourself_is_invalid_input(ports):
    alice = register(ports, "alice")
    with pytest.raises(InvalidInput) as exc:
        handlers.follow_user(FollowUser(alice.id, "alice"), ports)
    assert field_errors(exc) == {"username"}


def test_following_an_unknown_user_is_not_found(ports):
    alice = register(ports, "alice")
    with pytest.raises(UserNotFound):
        handlers.follow_user(FollowUser(alice.id, "nobody"), ports)


def test_unfollowing_twice_emits_one_event(ports):
    alice, bob = register(ports, "alice"), register(ports, "bob")
    handlers.follow_user(FollowUser(alice.id, "bob"), ports)
    assert handlers.unfollow_user(UnfollowUser(alice.id, "bob"), ports) is True
    assert handlers.unfollow_user(UnfollowUser(alice.id, "bob"), ports) is False
    assert ports.users.events[2:] == [UserFollowed(alice.id, bob.id),
                                      UserUnfollowed(alice.id, bob.id)]
    assert ports.users.by_id(bob.id).followers_count == 0


def test_a_follow_drops_both_cached_profiles(ports):
    alice, bob = register(ports, "alice"), register(ports, "bob")
    for user in (alice, bob):
        handlers.show_user_by_id(user.id, ports)
    assert ports.profiles.get(alice.id) == alice and ports.profiles.get(bob.id) == bob
    handlers.follow_user(FollowUser(alice.id, "bob"), ports)
    assert ports.profiles.get(alice.id) is None and ports.profiles.get(bob.id) is None
    assert handlers.find_user("bob", ports).followers_count == 1


def test_follower_lists_page_through_everyone_once(ports):
    star = register(ports, "star")
    fans = [register(ports, f"fan_{i}") for i in range(7)]
    for fan in fans:
        handlers.follow_user(FollowUser(fan.id, "star"), ports)
    seen, after = [], None
    while True:
        page = handlers.list_followers("star", after, 3, ports)
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
        handlers.follow_user(FollowUser(fan.id, "star"), ports)
    ids, next_after, count = handlers.page_follower_ids(star.id, None, 3, ports)
    assert ids == sorted(f.id for f in fans)[:3] and next_after == ids[-1] and count == 5
    ids, next_after, _ = handlers.page_follower_ids(star.id, next_after, 3, ports)
    assert len(ids) == 2 and next_after is None


def test_followee_ids_can_be_limited_to_popular_authors(ports):
    alice, star, nobody = register(ports, "alice"), register(ports, "star"), register(ports, "nobody")
    for name in ("star", "nobody"):
        handlers.follow_user(FollowUser(alice.id, name), ports)
    handlers.follow_user(FollowUser(nobody.id, "star"), ports)
    assert handlers.list_followee_ids(alice.id, 2, 100, ports) == [star.id]
    assert sorted(handlers.list_followee_ids(alice.id, 0, 100, ports)) == sorted([star.id, nobody.id])


# --------------------------------------------------------------- database down


def cached_users_with_database_down(ports, breaker_open: bool) -> tuple[User, User, Outage]:
    """Alice cached, Bob not, then the database goes down."""
    alice, bob = register(ports, "alice"), register(ports, "bob")
    handlers.find_user("alice", ports)
    outage = Outage(breaker_open)
    ports.users = outage
    return alice, bob, outage


def test_a_cached_profile_is_served_marked_degraded_while_the_breaker_is_open(ports):
    alice, _, outage = cached_users_with_database_down(ports, breaker_open=True)
    by_name = handlers.show_user("alice", ports)
    by_id = handlers.show_user_by_id(alice.id, ports)
    assert by_name == by_id == Profile(alice, PROFILE_FROM_CACHE)
    assert outage.tried == []


def test_an_uncached_profile_is_unavailable_with_a_retry_time_while_the_breaker_is_open(ports):
    _, bob, outage = cached_users_with_database_down(ports, breaker_open=True)
    for read in (lambda: handlers.show_user("bob", ports),
                 lambda: handlers.show_user_by_id(bob.id, ports)):
        with pytest.raises(StoreUnavailable) as exc:
            read()
        assert exc.value.retry_in == 4
    assert outage.tried == []


def test_a_cache_hit_needs_no_database_so_it_is_not_marked_before_the_breaker_knows(ports):
    alice, _, outage = cached_users_with_database_down(ports, breaker_open=False)
    assert handlers.show_user("alice", ports) == Profile(alice)
    assert outage.tried == []


def test_a_miss_whose_query_fails_is_unavailable(ports):
    _, bob, outage = cached_users_with_database_down(ports, breaker_open=False)
    with pytest.raises(StoreUnavailable) as exc:
        handlers.show_user_by_id(bob.id, ports)
    assert exc.value.retry_in == 1
    assert outage.tried == ["by_id"]


def test_an_impossible_username_is_still_not_found_while_the_database_is_down(ports):
    cached_users_with_database_down(ports, breaker_open=True)
    with pytest.raises(UserNotFound):
        handlers.show_user("NOT-A-NAME", ports)


def test_every_write_fails_at_once_without_trying_while_the_breaker_is_open(ports):
    alice, bob, outage = cached_users_with_database_down(ports, breaker_open=True)
    ids_before = ports.ids.next_id()
    writes = [
        lambda: register(ports, "carol"),
        lambda: handlers.start_session(StartSession("alice", "correct horse"), ports),
        lambda: handlers.update_profile(UpdateProfile(alice.id, at(1), {"bio": "x"}), ports),
        lambda: handlers.follow_user(FollowUser(alice.id, "bob"), ports),
        lambda: handlers.unfollow_user(UnfollowUser(alice.id, "bob"), ports),
    ]
    for write in writes:
        with pytest.raises(StoreUnavailable) as exc:
            write()
        assert exc.value.retry_in == 4
    assert outage.tried == []
    assert ports.passwords.verified == []  # no password work either
    assert ports.ids.next_id() == ids_before + 1  # and no id spent


def test_invalid_input_is_still_reported_while_the_database_is_down(ports):
    cached_users_with_database_down(ports, breaker_open=True)
    with pytest.raises(InvalidInput):
        register(ports, "X")


def test_follower_and_followee_ids_are_unavailable_while_the_database_is_down(ports):
    alice, _, _ = cached_users_with_database_down(ports, breaker_open=True)
    with pytest.raises(StoreUnavailable):
        handlers.page_follower_ids(alice.id, None, 10, ports)
    with pytest.raises(StoreUnavailable):
        handlers.list_followee_ids(alice.id, 0, 10, ports)

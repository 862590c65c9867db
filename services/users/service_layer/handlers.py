"""The users use cases: each takes a command or a few plain values and the ports.

Reads go to the profile cache first and fall back on it while the database is down;
writes fail at once while the database is known to be down (there is nothing to fall
back on). Every change that others must hear about creates its domain event here and
hands it to the repository, which writes it to the outbox in the change's transaction.
"""

from __future__ import annotations

from typing import Callable

from common import resilience
from common.rules import (
    InvalidInput,
    display_name_errors,
    field_error,
    is_username,
    password_errors,
    username_errors,
)
from users.domain.commands import FollowUser, RegisterUser, StartSession, UnfollowUser, UpdateProfile
from users.domain.errors import (
    IdempotencyKeyReused,
    InvalidCredentials,
    SignupKeyTaken,
    StoreUnavailable,
    TooManyAttempts,
    UsernameTaken,
    UserNotFound,
    VersionMismatch,
)
from users.domain.events import ProfileChanged, UserFollowed, UserRegistered, UserUnfollowed
from users.domain.model import (
    FIRST_VERSION,
    PROFILE_FROM_CACHE,
    Page,
    Position,
    Profile,
    Session,
    User,
    profile_change_errors,
)
from users.service_layer.ports import Ports

# Time a sign-up must still have left after hashing to insert and answer (one round trip
# to Postgres): with less, the caller would likely give up before hearing of its account.
COMMIT_MARGIN = 0.25


def require_database(ports: Ports) -> None:
    """Fail a write at once while the database is known to be down."""
    wait = ports.users.down_for()
    if wait:
        raise StoreUnavailable(wait)


# ------------------------------------------------------------------ accounts, sessions


def register_user(cmd: RegisterUser, ports: Ports) -> User:
    """Create an account and announce it; the display name defaults to the username.

    With an Idempotency-Key, a repeat gets the account the first request made, so a client
    that lost the answer (a timeout, a 503) can retry without meeting a 409.
    """
    errors = username_errors(cmd.username) + password_errors(cmd.password)
    if cmd.display_name is not None:
        errors += display_name_errors(cmd.display_name)
    if errors:
        raise InvalidInput(errors)
    require_database(ports)  # before spending an id and a password hash on it
    if cmd.idempotency_key is not None:
        made = ports.users.by_signup_key(cmd.idempotency_key)
        if made is not None:
            return _made_by_this_key(made, cmd)
    display_name = cmd.username if cmd.display_name is None else cmd.display_name
    password_hash = ports.passwords.hash(cmd.password)
    # Hashing takes a while: if the caller has stopped waiting, making the account now
    # would answer its 503 with an account it does not know about.
    resilience.require_time_left(COMMIT_MARGIN)
    registered = UserRegistered(ports.ids.next_id(), cmd.username, display_name, FIRST_VERSION)
    try:
        return ports.users.add(registered, password_hash, cmd.trace, cmd.idempotency_key)
    except (SignupKeyTaken, UsernameTaken):
        # A repeat of this sign-up, running at the same time, may have committed first.
        made = (ports.users.by_signup_key(cmd.idempotency_key)
                if cmd.idempotency_key is not None else None)
        if made is None:
            raise
        return _made_by_this_key(made, cmd)


def _made_by_this_key(made: User, cmd: RegisterUser) -> User:
    if made.username != cmd.username:
        raise IdempotencyKeyReused()
    return made


def start_session(cmd: StartSession, ports: Ports) -> Session:
    """Check a username and password and sign a token for them."""
    missing = [field_error(name, "is required and must be a string")
               for name in ("username", "password")
               if not isinstance(getattr(cmd, name), str)]
    if missing:
        raise InvalidInput(missing)
    require_database(ports)
    # Throttled before any hashing: a refused guess costs a counter read, not argon2.
    wait = ports.sign_ins.wait_for(cmd.username, cmd.client)
    if wait:
        raise TooManyAttempts(wait)
    creds = ports.users.credentials(cmd.username) if is_username(cmd.username) else None
    if creds is None:
        # Hash anyway, so an unknown username costs as long as a wrong password and the
        # response time does not reveal which usernames exist.
        ports.passwords.verify(ports.passwords.dummy_hash, cmd.password)
        ports.sign_ins.failed(cmd.username, cmd.client)
        raise InvalidCredentials()
    if not ports.passwords.verify(creds.password_hash, cmd.password):
        ports.sign_ins.failed(cmd.username, cmd.client)
        raise InvalidCredentials()
    ports.sign_ins.succeeded(cmd.username)
    if ports.passwords.needs_rehash(creds.password_hash):
        # Cost parameters went up since this hash was made: upgrade it while we know the
        # plain password.
        ports.users.set_password_hash(creds.user_id, ports.passwords.hash(cmd.password))
    return ports.tokens.issue(creds.user_id, creds.username)


# --------------------------------------------------------------------------- profiles


def show_user(username: str, ports: Ports) -> Profile:
    """A profile by username, cache first; from the cache alone while the database is down."""
    if not is_username(username):
        raise UserNotFound()
    # Usernames never change, so the cached name -> id mapping is as good as the database's.
    user_id = ports.profiles.id_for(username)
    cached = ports.profiles.get(user_id) if user_id is not None else None
    return _profile(cached, lambda: ports.users.by_username(username), ports)


def show_user_by_id(user_id: int, ports: Ports) -> Profile:
    """A profile by id, cache first; from the cache alone while the database is down."""
    return _profile(ports.profiles.get(user_id), lambda: ports.users.by_id(user_id), ports)


def _profile(cached: User | None, load: Callable[[], User | None], ports: Ports) -> Profile:
    wait = ports.users.down_for()
    if wait:
        # The database failed moments ago: a cached copy is the best answer there is,
        # marked so the client knows; without one there is no answer.
        if cached is None:
            raise StoreUnavailable(wait)
        return Profile(cached, PROFILE_FROM_CACHE)
    if cached is not None:
        return Profile(cached)
    user = load()  # a miss: the database or nothing (StoreUnavailable)
    if user is None:
        raise UserNotFound()
    ports.profiles.put([user])
    return Profile(user)


def find_user(username: str, ports: Ports) -> User:
    """A profile by username, cache first."""
    return show_user(username, ports).user


def update_profile(cmd: UpdateProfile, ports: Ports) -> User:
    """Edit display name and/or bio if the client saw the current version; announce it."""
    errors = profile_change_errors(cmd.changes)
    if errors:
        raise InvalidInput(errors)
    require_database(ports)
    if not cmd.changes:
        current = ports.users.by_id(cmd.user_id)
        if current is None:
            raise UserNotFound()
        if cmd.expected_versions is not None and current.version not in cmd.expected_versions:
            raise VersionMismatch(current.version)
        return current
    updated = ports.users.update_profile(cmd.user_id, cmd.expected_versions, cmd.changes,
                                         ProfileChanged.of, cmd.trace)
    # Drop the cached copy whatever happened: after a success it is stale, and after a
    # version mismatch the client will read again and must see the version that beat it.
    ports.profiles.forget(cmd.user_id)
    if updated is None:
        current = ports.users.by_id(cmd.user_id)
        if current is None:
            raise UserNotFound()
        raise VersionMismatch(current.version)
    return updated


# ------------------------------------------------------------------------------ graph


def follow_user(cmd: FollowUser, ports: Ports) -> bool:
    """Follow someone; following them again changes nothing. True if the graph changed."""
    require_database(ports)
    followee = find_user(cmd.followee_username, ports)
    if followee.id == cmd.follower_id:
        raise InvalidInput([field_error("username", "you cannot follow yourself")])
    changed = ports.users.follow(UserFollowed(cmd.follower_id, followee.id), cmd.trace)
    if changed:
        ports.profiles.forget(cmd.follower_id, followee.id)
    return changed


def unfollow_user(cmd: UnfollowUser, ports: Ports) -> bool:
    """Stop following someone; a second unfollow changes nothing. True if it changed."""
    require_database(ports)
    followee = find_user(cmd.followee_username, ports)
    changed = ports.users.unfollow(UserUnfollowed(cmd.follower_id, followee.id), cmd.trace)
    if changed:
        ports.profiles.forget(cmd.follower_id, followee.id)
    return changed


def list_followers(username: str, after: Position | None, limit: int, ports: Ports) -> Page:
    """Who follows `username`, most recent follow first."""
    user = find_user(username, ports)
    return _page(ports.users.followers(user.id, after, limit + 1), limit)


def list_following(username: str, after: Position | None, limit: int, ports: Ports) -> Page:
    """Whom `username` follows, most recent follow first."""
    user = find_user(username, ports)
    return _page(ports.users.following(user.id, after, limit + 1), limit)


def _page(rows: list[tuple[User, Position]], limit: int) -> Page:
    # One row more than asked for tells whether another page exists without a count.
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([u for u, _ in rows], rows[-1][1] if more else None)


def page_follower_ids(user_id: int, after: int | None, limit: int,
                      ports: Ports) -> tuple[list[int], int | None, int]:
    """A page of follower ids ascending, the id to continue after, and the follower count."""
    user = ports.users.by_id(user_id)
    if user is None:
        raise UserNotFound()
    ids = ports.users.follower_ids(user_id, after, limit + 1)
    more = len(ids) > limit
    ids = ids[:limit]
    return ids, (ids[-1] if more else None), user.followers_count


def list_followee_ids(user_id: int, min_followers: int, limit: int, ports: Ports,
                      pulled: bool = False) -> list[int]:
    """Whom a user follows (up to `limit`), optionally only those with at least
    `min_followers` followers (0: every followee), and with `pulled` also whoever was
    ever a celebrity (their tweets of that time were merged at read time, not fanned out)."""
    if ports.users.by_id(user_id) is None:
        raise UserNotFound()
    return ports.users.followee_ids(user_id, min_followers, limit, pulled)

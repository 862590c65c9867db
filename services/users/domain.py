"""The users domain: accounts, sessions, profiles and the follow graph.

Pure rules and use cases. Stores, the password hasher, the token signer and the id source
are reached through the ports below, so this module imports neither Flask nor a driver and
runs in unit tests against in-memory fakes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Protocol, Sequence

from common.problems import Problem, validation_failed

USERNAME = re.compile(r"[a-z0-9_]{3,30}")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
DISPLAY_NAME_MAX = 50
BIO_MAX = 160


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class User:
    """A user's public profile; `version` changes on every profile edit (the ETag)."""

    id: int
    username: str
    display_name: str
    bio: str
    followers_count: int
    following_count: int
    version: int
    created_at: datetime


@dataclass(frozen=True)
class Credentials:
    """What a login is checked against."""

    user_id: int
    username: str
    password_hash: str


@dataclass(frozen=True)
class Profile:
    """A profile as read, and why it did not come the usual way (None: it did)."""

    user: User
    degraded: str | None = None


@dataclass(frozen=True)
class Profiles:
    """Profiles of many users; `unavailable` are ids neither cached nor readable now."""

    users: dict[int, User]
    unavailable: list[int] = field(default_factory=list)
    degraded: str | None = None


# Why a read was answered without the database (the `Murmur-Degraded` header).
PROFILE_FROM_CACHE = "profile-from-cache"


@dataclass(frozen=True)
class Session:
    """A signed access token handed out at login."""

    access_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class Position:
    """Where a follow list page ends: when the follow happened, then the other user's id."""

    followed_at: datetime
    user_id: int


@dataclass(frozen=True)
class Page:
    """One page of a follow list and where the next one starts (None at the end)."""

    users: list[User]
    next: Position | None


# -------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class RegisterUser:
    username: Any
    password: Any
    display_name: Any = None


@dataclass(frozen=True)
class StartSession:
    username: Any
    password: Any


@dataclass(frozen=True)
class UpdateProfile:
    user_id: int
    expected_version: int | None  # None: If-Match "*", any current version will do
    changes: dict[str, Any] = field(default_factory=dict)  # display_name and/or bio


@dataclass(frozen=True)
class FollowUser:
    follower_id: int
    followee_username: str


@dataclass(frozen=True)
class UnfollowUser:
    follower_id: int
    followee_username: str


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True)
class UserFollowed:
    follower_id: int
    followee_id: int


@dataclass(frozen=True)
class UserUnfollowed:
    follower_id: int
    followee_id: int


# ---------------------------------------------------------------------------- errors


class UserNotFound(Problem):
    """404: no such user."""

    def __init__(self, detail: str = "No such user.") -> None:
        super().__init__(404, detail)


class UsernameTaken(Problem):
    """409: the username belongs to someone else."""

    def __init__(self, username: str) -> None:
        super().__init__(409, f"The username {username!r} is taken.",
                         errors=[{"field": "username", "message": "is taken"}])


class InvalidCredentials(Problem):
    """401: unknown username or wrong password (deliberately indistinguishable)."""

    def __init__(self) -> None:
        super().__init__(401, "The username or password is wrong.")


class DatabaseUnavailable(Problem):
    """503: the user database is down or too slow; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(503, "The user database is not answering; try again shortly.",
                         headers={"Retry-After": str(retry_after)})


class VersionMismatch(Problem):
    """412: the profile changed since the client read it."""

    def __init__(self, current: int) -> None:
        super().__init__(412, f"The profile is at version {current}; read it again.")


# ----------------------------------------------------------------------------- ports


class UserRepository(Protocol):
    """Users and follows. Raises DatabaseUnavailable when the database cannot answer."""

    def down_for(self) -> int: ...  # seconds before the database is tried again (0: now)

    def add(self, user_id: int, username: str, display_name: str,
            password_hash: str) -> User: ...  # raises UsernameTaken

    def by_id(self, user_id: int) -> User | None: ...

    def by_username(self, username: str) -> User | None: ...

    def by_ids(self, user_ids: Sequence[int]) -> list[User]: ...

    def credentials(self, username: str) -> Credentials | None: ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def update_profile(self, user_id: int, expected_version: int | None,
                       changes: dict[str, str]) -> User | None: ...

    def follow(self, event: UserFollowed) -> bool: ...  # True if the graph changed

    def unfollow(self, event: UserUnfollowed) -> bool: ...

    def followers(self, user_id: int, after: Position | None,
                  limit: int) -> list[tuple[User, Position]]: ...

    def following(self, user_id: int, after: Position | None,
                  limit: int) -> list[tuple[User, Position]]: ...

    def follower_ids(self, user_id: int, after: int | None, limit: int) -> list[int]: ...

    def followee_ids(self, user_id: int, min_followers: int, limit: int) -> list[int]: ...


class ProfileCache(Protocol):
    def get(self, user_id: int) -> User | None: ...

    def get_many(self, user_ids: Sequence[int]) -> dict[int, User]: ...

    def id_for(self, username: str) -> int | None: ...

    def put(self, users: Iterable[User]) -> None: ...

    def forget(self, *user_ids: int) -> None: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    @property
    def dummy_hash(self) -> str: ...


class TokenIssuer(Protocol):
    def issue(self, user_id: int, username: str) -> Session: ...


class IdSource(Protocol):
    def next_id(self) -> int: ...


@dataclass
class Ports:
    """Everything the use cases need from the outside world."""

    users: UserRepository
    profiles: ProfileCache
    passwords: PasswordHasher
    tokens: TokenIssuer
    ids: IdSource


# ------------------------------------------------------------------------ validation


def username_errors(value: Any) -> list[dict[str, str]]:
    """Problems with a username, as 422 field errors."""
    if not isinstance(value, str):
        return [{"field": "username", "message": "is required and must be a string"}]
    if not USERNAME.fullmatch(value):
        return [{"field": "username",
                 "message": "must be 3-30 characters of a-z, 0-9 and underscore"}]
    return []


def password_errors(value: Any) -> list[dict[str, str]]:
    """Problems with a new password, as 422 field errors."""
    if not isinstance(value, str):
        return [{"field": "password", "message": "is required and must be a string"}]
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        return [{"field": "password",
                 "message": f"must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"}]
    return []


def text_errors(name: str, value: Any, limit: int) -> list[dict[str, str]]:
    """Problems with a free-text profile field, as 422 field errors."""
    if not isinstance(value, str):
        return [{"field": name, "message": "must be a string"}]
    if len(value) > limit:
        return [{"field": name, "message": f"must be at most {limit} characters"}]
    return []


PROFILE_FIELDS = {"display_name": DISPLAY_NAME_MAX, "bio": BIO_MAX}


def profile_change_errors(changes: dict[str, Any]) -> list[dict[str, str]]:
    """Problems with a profile edit: only display_name and bio, each within its limit."""
    errors = [{"field": name, "message": "cannot be changed"}
              for name in changes if name not in PROFILE_FIELDS]
    for name, limit in PROFILE_FIELDS.items():
        if name in changes:
            errors += text_errors(name, changes[name], limit)
    return errors


def is_username(value: Any) -> bool:
    """Whether `value` could be someone's username (saves a lookup when it cannot)."""
    return isinstance(value, str) and USERNAME.fullmatch(value) is not None


# ------------------------------------------------------------------------- use cases


def require_database(ports: Ports) -> None:
    """Fail a write at once while the database is known to be down (nothing to fall back on)."""
    wait = ports.users.down_for()
    if wait:
        raise DatabaseUnavailable(wait)


def register_user(cmd: RegisterUser, ports: Ports) -> User:
    """Create an account; the display name defaults to the username."""
    errors = username_errors(cmd.username) + password_errors(cmd.password)
    if cmd.display_name is not None:
        errors += text_errors("display_name", cmd.display_name, DISPLAY_NAME_MAX)
    if errors:
        raise validation_failed(errors)
    require_database(ports)  # before spending an id and a password hash on it
    display_name = cmd.username if cmd.display_name is None else cmd.display_name
    return ports.users.add(ports.ids.next_id(), cmd.username, display_name,
                           ports.passwords.hash(cmd.password))


def start_session(cmd: StartSession, ports: Ports) -> Session:
    """Check a username and password and sign a token for them."""
    if not isinstance(cmd.username, str) or not isinstance(cmd.password, str):
        raise validation_failed(
            [{"field": name, "message": "is required and must be a string"}
             for name in ("username", "password")
             if not isinstance(getattr(cmd, name), str)])
    require_database(ports)
    creds = ports.users.credentials(cmd.username) if is_username(cmd.username) else None
    if creds is None:
        # Hash anyway, so an unknown username costs as long as a wrong password and the
        # response time does not reveal which usernames exist.
        ports.passwords.verify(ports.passwords.dummy_hash, cmd.password)
        raise InvalidCredentials()
    if not ports.passwords.verify(creds.password_hash, cmd.password):
        raise InvalidCredentials()
    if ports.passwords.needs_rehash(creds.password_hash):
        # Cost parameters went up since this hash was made: upgrade it while we know the
        # plain password.
        ports.users.set_password_hash(creds.user_id, ports.passwords.hash(cmd.password))
    return ports.tokens.issue(creds.user_id, creds.username)


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
            raise DatabaseUnavailable(wait)
        return Profile(cached, PROFILE_FROM_CACHE)
    if cached is not None:
        return Profile(cached)
    user = load()  # a miss: the database or nothing (DatabaseUnavailable)
    if user is None:
        raise UserNotFound()
    ports.profiles.put([user])
    return Profile(user)


def find_user(username: str, ports: Ports) -> User:
    """A profile by username, cache first."""
    return show_user(username, ports).user


def show_users(user_ids: Sequence[int], ports: Ports) -> Profiles:
    """Profiles of many users (unknown ids left out): one cache round trip, one query.

    While the database is down the cached ones still come back, marked degraded, and the
    rest are listed as unavailable: a caller rendering many authors is better served by
    most of them than by none."""
    wanted = list(dict.fromkeys(user_ids))
    found = ports.profiles.get_many(wanted)
    missing = [uid for uid in wanted if uid not in found]
    if ports.users.down_for():
        return Profiles(found, missing, PROFILE_FROM_CACHE)
    if missing:
        try:
            loaded = ports.users.by_ids(missing)
        except DatabaseUnavailable:
            return Profiles(found, missing, PROFILE_FROM_CACHE)
        ports.profiles.put(loaded)
        found.update((u.id, u) for u in loaded)
    return Profiles(found)


def update_profile(cmd: UpdateProfile, ports: Ports) -> User:
    """Edit display name and/or bio, if the client saw the current version."""
    errors = profile_change_errors(cmd.changes)
    if errors:
        raise validation_failed(errors)
    require_database(ports)
    if not cmd.changes:
        current = ports.users.by_id(cmd.user_id)
        if current is None:
            raise UserNotFound()
        if cmd.expected_version not in (None, current.version):
            raise VersionMismatch(current.version)
        return current
    updated = ports.users.update_profile(cmd.user_id, cmd.expected_version, cmd.changes)
    # Drop the cached copy whatever happened: after a success it is stale, and after a
    # 412 the client will read again and must see the version that beat it.
    ports.profiles.forget(cmd.user_id)
    if updated is None:
        current = ports.users.by_id(cmd.user_id)
        if current is None:
            raise UserNotFound()
        raise VersionMismatch(current.version)
    return updated


def follow_user(cmd: FollowUser, ports: Ports) -> bool:
    """Follow someone; following them again changes nothing. True if the graph changed."""
    require_database(ports)
    followee = find_user(cmd.followee_username, ports)
    if followee.id == cmd.follower_id:
        raise validation_failed([{"field": "username", "message": "you cannot follow yourself"}])
    changed = ports.users.follow(UserFollowed(cmd.follower_id, followee.id))
    if changed:
        ports.profiles.forget(cmd.follower_id, followee.id)
    return changed


def unfollow_user(cmd: UnfollowUser, ports: Ports) -> bool:
    """Stop following someone; a second unfollow changes nothing. True if it changed."""
    require_database(ports)
    followee = find_user(cmd.followee_username, ports)
    changed = ports.users.unfollow(UserUnfollowed(cmd.follower_id, followee.id))
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


def list_followee_ids(user_id: int, min_followers: int, limit: int, ports: Ports) -> list[int]:
    """Whom a user follows (up to `limit`), optionally only those with at least
    `min_followers` followers (0: every followee)."""
    if ports.users.by_id(user_id) is None:
        raise UserNotFound()
    return ports.users.followee_ids(user_id, min_followers, limit)

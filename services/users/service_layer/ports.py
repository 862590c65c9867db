"""The ports of the users use cases: what they need from stores, hashers and signers.

Adapters implement these Protocols (Postgres, Redis, argon2, JWT); unit tests implement
them in memory. A store that cannot answer raises `StoreUnavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from users.domain.commands import Trace
from users.domain.events import ProfileChanged, UserFollowed, UserRegistered, UserUnfollowed
from users.domain.model import Credentials, Position, Session, User


class UserRepository(Protocol):
    """Users, follows, and the outbox their events go to, written in one transaction."""

    def down_for(self) -> int: ...  # seconds before the database is tried again (0: now)

    def add(self, event: UserRegistered, password_hash: str, trace: Trace,
            signup_key: str | None = None) -> User: ...  # raises UsernameTaken, SignupKeyTaken

    def by_signup_key(self, key: str) -> User | None: ...

    def by_id(self, user_id: int) -> User | None: ...

    def by_username(self, username: str) -> User | None: ...

    def credentials(self, username: str) -> Credentials | None: ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def update_profile(self, user_id: int, expected_versions: frozenset[int] | None,
                       changes: dict[str, str], announce: Callable[[User], ProfileChanged],
                       trace: Trace) -> User | None:
        """Apply `changes` if the profile is at one of `expected_versions` (None: any),
        checked and applied atomically, and write `announce(updated)` to the outbox with
        it; None when no row matched."""
        ...

    def follow(self, event: UserFollowed, trace: Trace) -> bool: ...  # True if it changed

    def unfollow(self, event: UserUnfollowed, trace: Trace) -> bool: ...

    def followers(self, user_id: int, after: Position | None,
                  limit: int) -> list[tuple[User, Position]]: ...

    def following(self, user_id: int, after: Position | None,
                  limit: int) -> list[tuple[User, Position]]: ...

    def follower_ids(self, user_id: int, after: int | None, limit: int) -> list[int]: ...

    def followee_ids(self, user_id: int, min_followers: int, limit: int,
                     pulled: bool = False) -> list[int]: ...


class ProfileCache(Protocol):
    def get(self, user_id: int) -> User | None: ...

    def id_for(self, username: str) -> int | None: ...

    def put(self, users: Iterable[User]) -> None: ...

    def forget(self, *user_ids: int) -> None: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    @property
    def dummy_hash(self) -> str: ...


class SignInThrottle(Protocol):
    """Failed sign-ins counted per account and per address over a window."""

    def wait_for(self, username: str, client: str) -> int: ...  # seconds; 0: go ahead

    def failed(self, username: str, client: str) -> None: ...

    def succeeded(self, username: str) -> None: ...


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
    sign_ins: SignInThrottle

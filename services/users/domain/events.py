"""What the users service tells other services has happened.

Each event is written to the service's outbox in the same transaction as the change it
reports and published afterwards: UserFollowed and UserUnfollowed on the follows topic
(key: the follower), UserRegistered and ProfileChanged on the users topic (key: the
user), where other services keep their own copy of what they show about a user.
"""

from __future__ import annotations

from dataclasses import dataclass

from users.domain.model import User


@dataclass(frozen=True)
class UserFollowed:
    follower_id: int
    followee_id: int


@dataclass(frozen=True)
class UserUnfollowed:
    follower_id: int
    followee_id: int


@dataclass(frozen=True)
class UserRegistered:
    """A new account, with the public profile it starts with."""

    user_id: int
    username: str
    display_name: str
    version: int


@dataclass(frozen=True)
class ProfileChanged:
    """A profile edit; `version` grows with each, so a reader keeps the highest it saw."""

    user_id: int
    username: str
    display_name: str
    version: int

    @classmethod
    def of(cls, user: User) -> "ProfileChanged":
        """The event announcing `user` as it is after the edit."""
        return cls(user.id, user.username, user.display_name, user.version)

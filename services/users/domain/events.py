"""What the users service tells other services has happened.

Each event is written to the service's outbox in the same transaction as the change it
reports and published afterwards: UserFollowed and UserUnfollowed on the follows topic
(key: the follower), UserRegistered and ProfileChanged on the users topic (key: the
user), where other services keep their own copy of what they show about a user, and
CelebrityStatusChanged on the users topic too (key: `<user>/celebrity`).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import rules
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


@dataclass(frozen=True)
class CelebrityStatusChanged:
    """A user's follower count crossed the celebrity threshold, up or down.

    Timeline keeps the status in its copy of authors and decides at each post whether the
    tweet is fanned out; `version` counts the user's status changes, so a reader keeps
    the highest it saw. A user users has ever counted as a celebrity (version above 0)
    may have tweets that were never fanned out: the home-timeline read keeps merging
    theirs (users' `followee-ids?pulled=true`).
    """

    user_id: int
    celebrity: bool
    version: int
    followers_count: int

    @classmethod
    def after_count_change(cls, user_id: int, followers_count: int, was_celebrity: bool,
                           version: int, threshold: int) -> "CelebrityStatusChanged | None":
        """The change a new follower count makes to a user's status (None: it makes none)."""
        celebrity = rules.is_celebrity(followers_count, threshold)
        if celebrity == was_celebrity:
            return None
        return cls(user_id, celebrity, version + 1, followers_count)

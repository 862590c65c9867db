"""What the users service knows: users, their credentials, sessions and follow positions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.rules import bio_errors, display_name_errors, field_error

# A new profile starts at this version; every edit of display name or bio adds one.
FIRST_VERSION = 1

# Why a read was answered without the database (clients see it as a degraded answer).
PROFILE_FROM_CACHE = "profile-from-cache"


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


# The profile fields a user may edit, with their length limits.
EDITABLE_FIELDS = {"display_name": display_name_errors, "bio": bio_errors}


def profile_change_errors(changes: dict[str, Any]) -> list[dict[str, str]]:
    """What is wrong with a profile edit: only display_name and bio, each within its limit."""
    errors = [field_error(name, "cannot be changed")
              for name in changes if name not in EDITABLE_FIELDS]
    for name, rule in EDITABLE_FIELDS.items():
        if name in changes:
            errors += rule(changes[name])
    return errors

"""The rules every service agrees on: ids, names, text limits, the celebrity threshold.

One home for each rule, so that the gateway's request models, the users and timeline
domains and the SQL constraints cannot drift apart (the unit tests check the SQL and
the OpenAPI models against these values). Nothing here knows about HTTP.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID = (1 << 63) - 1  # ids are positive signed 64-bit integers (Postgres bigint, CQL bigint)

USERNAME_MIN, USERNAME_MAX = 3, 30
USERNAME_PATTERN = rf"^[a-z0-9_]{{{USERNAME_MIN},{USERNAME_MAX}}}$"
USERNAME_RULE = f"must be {USERNAME_MIN}-{USERNAME_MAX} characters of a-z, 0-9 and underscore"
PASSWORD_MIN, PASSWORD_MAX = 8, 128
DISPLAY_NAME_MAX = 50
BIO_MAX = 160
TWEET_MAX = 280
IDEMPOTENCY_KEY_MAX = 255

_USERNAME = re.compile(USERNAME_PATTERN)


class InvalidInput(ValueError):
    """Input that breaks a rule; `errors` name each field and what is wrong with it."""

    def __init__(self, errors: list[dict[str, str]], detail: str = "The request is invalid.") -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


def field_error(name: str, message: str) -> dict[str, str]:
    """One entry of InvalidInput.errors."""
    return {"field": name, "message": message}


def parse_id(raw: Any) -> int | None:
    """A positive 64-bit id written in canonical decimal, or None if `raw` cannot be one."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if 0 < raw <= MAX_ID else None
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or raw.startswith("0"):
        return None
    if len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def is_username(value: Any) -> bool:
    """Whether `value` could be someone's username (saves a lookup when it cannot)."""
    return isinstance(value, str) and _USERNAME.fullmatch(value) is not None


def username_errors(value: Any, name: str = "username") -> list[dict[str, str]]:
    """What is wrong with a username, as field errors (empty when nothing is)."""
    if not isinstance(value, str):
        return [field_error(name, "is required and must be a string")]
    return [] if is_username(value) else [field_error(name, USERNAME_RULE)]


def password_errors(value: Any) -> list[dict[str, str]]:
    """What is wrong with a new password, as field errors."""
    if not isinstance(value, str):
        return [field_error("password", "is required and must be a string")]
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        return [field_error("password", f"must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")]
    return []


def text_errors(name: str, value: Any, limit: int, *, required: bool = False) -> list[dict[str, str]]:
    """What is wrong with a free-text field of at most `limit` characters."""
    if not isinstance(value, str):
        return [field_error(name, "must be a string")]
    if "\x00" in value:
        return [field_error(name, "must not contain NUL characters")]
    if required and not value.strip():
        return [field_error(name, f"must be 1 to {limit} characters")]
    if len(value) > limit:
        return [field_error(name, f"must be at most {limit} characters")]
    return []


def tweet_text(value: Any) -> str:
    """The tweet text stripped of surrounding blanks; InvalidInput unless 1-280 characters remain."""
    if not isinstance(value, str):
        raise InvalidInput([field_error("text", "must be a string")])
    stripped = value.strip()
    errors = text_errors("text", stripped, TWEET_MAX, required=True)
    if errors:
        raise InvalidInput([field_error("text", f"must be 1 to {TWEET_MAX} characters")]
                           if "NUL" not in errors[0]["message"] else errors)
    return stripped


def is_celebrity(followers_count: int, threshold: int) -> bool:
    """Whether an author has so many followers that their tweets are pulled at read time
    instead of pushed at write time (the hybrid fan-out of DESIGN §4)."""
    return followers_count >= threshold

"""The rules every service agrees on: ids, names, text limits, the celebrity threshold.

One home for each rule, so that the gateway's request models, the users and timeline
domains and the SQL constraints cannot drift apart (the unit tests check the SQL and
the OpenAPI models against these values). Nothing here knows about HTTP.
"""

from __future__ import annotations

import re
import unicodedata
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


# What text Murmur accepts (every free-text field: display names, bios, tweets), one rule
# applied by the gateway's request models and again by the domains that store the text:
# - Unicode scalar values only: a lone surrogate cannot be stored (nor can NUL in Postgres).
# - No control characters (C0, DEL, C1); multi-line fields keep tab and newline (a CR is
#   dropped from CRLF by clients, not here: it is refused like any other control).
# - No bidirectional embeddings, overrides or isolates (U+202A-U+202E, U+2066-U+2069):
#   they reorder what follows them and are the stuff of spoofed names and links.
# - No noncharacters or interlinear annotation controls.
# - Text that is not empty must show something: only spaces, format characters
#   (zero-width spaces and joiners, the BOM, LRM/RLM) and blank fillers is refused.
# Lengths count code points, as Postgres and Cassandra do.
_CONTROL = "\x00-\x08\x0b-\x1f\x7f-\x9f"
_FORBIDDEN_ANYWHERE = ("\u202a-\u202e\u2066-\u2069\ufff9-\ufffb\ufdd0-\ufdef"
                       "\ufffe\uffff\ud800-\udfff")
_FORBIDDEN_MULTILINE = re.compile(f"[{_CONTROL}{_FORBIDDEN_ANYWHERE}]")
_FORBIDDEN_ONE_LINE = re.compile(f"[\\t\\n{_CONTROL}{_FORBIDDEN_ANYWHERE}]")


def text_pattern(*, multiline: bool = True) -> str:
    """The characters acceptable text may hold, as a JSON Schema `pattern` (in `\\uXXXX`
    escapes). It cannot say the rest of the rule: no plane noncharacters, something shown,
    and no lone surrogates (a pattern matches Unicode scalar values, which they are not)."""
    anywhere = _FORBIDDEN_ANYWHERE.replace("\ud800-\udfff", "")
    forbidden = ("" if multiline else "\t\n") + _CONTROL + anywhere
    return "^[^" + "".join(ch if ch == "-" else f"\\u{ord(ch):04x}" for ch in forbidden) + "]*$"
# Letters that render as nothing (Hangul fillers, the braille blank, Mongolian vowel
# separator): they are used to make names and tweets that look empty.
_BLANK_LETTERS = frozenset("\u115f\u1160\u180e\u2800\u3164\uffa0")
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc", "Mn", "Me"})


def _plane_noncharacter(value: str) -> bool:
    return any((ord(ch) & 0xFFFE) == 0xFFFE for ch in value if ord(ch) > 0xFFFF)


def _kind_of(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "an unpaired surrogate"
    if unicodedata.category(char) == "Cc":
        return "a line break: this field is one line" if char in "\t\n" else "a control character"
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return "a bidirectional override"
    return "a noncharacter"


def _shows_something(value: str) -> bool:
    return any(not ch.isspace() and ch not in _BLANK_LETTERS
               and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in value)


def text_errors(name: str, value: Any, limit: int, *, required: bool = False,
                multiline: bool = True) -> list[dict[str, str]]:
    """What is wrong with a free-text field of at most `limit` characters (see above)."""
    if not isinstance(value, str):
        return [field_error(name, "must be a string")]
    message = text_problem(value, limit, required=required, multiline=multiline)
    return [field_error(name, message)] if message else []


def text_problem(value: str, limit: int, *, required: bool = False,
                 multiline: bool = True) -> str | None:
    """Why `value` is not acceptable text for a field, or None when it is."""
    if "\x00" in value:
        return "must not contain NUL characters"
    forbidden = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_ONE_LINE).search(value)
    if forbidden or _plane_noncharacter(value):
        char = forbidden.group() if forbidden else next(
            ch for ch in value if ord(ch) > 0xFFFF and (ord(ch) & 0xFFFE) == 0xFFFE)
        return f"must not contain U+{ord(char):04X} ({_kind_of(char)})"
    if required and not value.strip():
        return f"must be 1 to {limit} characters"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if value and not _shows_something(value):
        return "must contain visible characters, not only blanks or invisible ones"
    return None


def display_name_errors(value: Any) -> list[dict[str, str]]:
    """What is wrong with a display name: one line of acceptable text, at most 50 characters."""
    return text_errors("display_name", value, DISPLAY_NAME_MAX, multiline=False)


def bio_errors(value: Any) -> list[dict[str, str]]:
    """What is wrong with a bio: acceptable text of at most 160 characters, lines allowed."""
    return text_errors("bio", value, BIO_MAX)


def tweet_text(value: Any) -> str:
    """The tweet text stripped of surrounding blanks; InvalidInput unless it is acceptable
    text of 1-280 characters."""
    if not isinstance(value, str):
        raise InvalidInput([field_error("text", "must be a string")])
    stripped = value.strip()
    errors = text_errors("text", stripped, TWEET_MAX, required=True)
    if errors:
        raise InvalidInput(errors)
    return stripped


IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII without spaces
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def idempotency_key(value: str | None) -> str | None:
    """An Idempotency-Key as given (None when absent); InvalidInput unless it is 1-255
    printable ASCII characters without spaces."""
    if value is not None and not (len(value) <= IDEMPOTENCY_KEY_MAX
                                  and _IDEMPOTENCY_KEY.fullmatch(value)):
        raise InvalidInput([field_error(
            "Idempotency-Key",
            f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters without spaces")])
    return value


def is_celebrity(followers_count: int, threshold: int) -> bool:
    """Whether an author has so many followers that their tweets are pulled at read time
    instead of pushed at write time (the hybrid fan-out of DESIGN §4)."""
    return followers_count >= threshold

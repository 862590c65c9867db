"""Opaque page cursors for the follow lists.

A cursor is the keyset position of the last item served: the follow's timestamp in
microseconds and the other user's id, base64url-encoded so clients treat it as a token.
Keyset paging stays fast on deep pages and never repeats or skips rows when follows
arrive between two page reads, unlike OFFSET.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone

from users.domain import Position

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PREFIX = "f1"  # format version, so the layout can change without misreading old cursors


class InvalidCursor(ValueError):
    """A cursor this service did not issue."""


def encode_cursor(position: Position) -> str:
    """The opaque cursor for `position`."""
    micros = (position.followed_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{_PREFIX}:{micros}:{position.user_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor stands for; raises InvalidCursor for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        prefix, micros, user_id = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        if prefix != _PREFIX or not micros.isdigit() or not user_id.isdigit():
            raise InvalidCursor("malformed cursor")
        if int(user_id) >= 1 << 63:
            raise InvalidCursor("malformed cursor")
        return Position(_EPOCH + timedelta(microseconds=int(micros)), int(user_id))
    except (binascii.Error, UnicodeError, ValueError, OverflowError) as exc:
        raise InvalidCursor("malformed cursor") from exc

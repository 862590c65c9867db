"""Page cursors: opaque to clients, bound to the kind of list that issued them.

A cursor carries the keyset position of the last item served (a few integers) and the
name of its list, base64url-encoded. Decoding checks both, so a cursor of one list is
rejected by another. Nothing here knows about HTTP: a bad cursor is InvalidCursor.
"""

from __future__ import annotations

import base64
import binascii

from common.rules import MAX_ID

_VERSION = "c1"


class InvalidCursor(ValueError):
    """A cursor this list did not issue."""


def encode(kind: str, *position: int) -> str:
    """The cursor of `kind` for a position of non-negative integers."""
    raw = ":".join([_VERSION, kind, *(str(part) for part in position)]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(kind: str, cursor: str, parts: int) -> tuple[int, ...]:
    """The position a cursor of `kind` stands for; InvalidCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidCursor("not a cursor") from exc
    fields = raw.split(":")
    if len(fields) != parts + 2 or fields[0] != _VERSION or fields[1] != kind:
        raise InvalidCursor(f"not a cursor of {kind}")
    if not all(f.isascii() and f.isdigit() and (f == "0" or not f.startswith("0"))
               for f in fields[2:]):
        raise InvalidCursor("malformed cursor")
    position = tuple(int(f) for f in fields[2:])
    if any(value > MAX_ID for value in position) or encode(kind, *position) != cursor:
        raise InvalidCursor("malformed cursor")
    return position

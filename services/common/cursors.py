"""Page cursors: opaque to clients, sealed, and bound to the one list that issued them.

A cursor carries the keyset position of the last item served (a few integers). It is
sealed with AES-SIV under a key every replica shares (MURMUR_CURSOR_KEY, or the generated
secret `cursor-key`): the position is encrypted, so a client cannot read a follow's time
or a user id out of it, and authenticated together with the list it belongs to (its kind
and its owner, as associated data), so a cursor that was cut, altered, forged or issued
for another list, even another user's list of the same kind, is refused. AES-SIV is
deterministic: the same position of the same list always gives the same cursor, so a page
read twice is the same body. Nothing here knows about HTTP: a bad cursor is InvalidCursor.

A cursor is base64url without padding of: a version byte, then the 16-byte synthetic IV
and the encrypted position (8 bytes per integer).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.rules import MAX_ID

_VERSION = b"\x01"
_TAG_SIZE = 16
_PART_SIZE = 8
MIN_SECRET_LENGTH = 16
# Base64url without padding; the longest cursor (two integers) is 44 characters.
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


class InvalidCursor(ValueError):
    """A cursor this list did not issue."""


class MissingCursorKey(ValueError):
    """No usable key to seal cursors with: a process cannot serve pages without one."""


class Cursors:
    """Seals and opens the cursors of every list of a service, under one shared secret."""

    def __init__(self, secret: str) -> None:
        if len(secret or "") < MIN_SECRET_LENGTH:
            raise MissingCursorKey(
                f"no page cursor key of at least {MIN_SECRET_LENGTH} characters: set "
                "MURMUR_CURSOR_KEY, or the `cursor-key` secret the platform generates at "
                "first start; every replica must have the same one")
        # A key of its own for cursors, whatever else the secret is used for.
        key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
                   info=b"murmur page cursors v1").derive(secret.encode())
        self._siv = AESSIV(key)

    def encode(self, kind: str, owner: str | int, *position: int) -> str:
        """The cursor of the list `kind` of `owner` at a position of integers 0..MAX_ID."""
        if not position or any(not 0 <= part <= MAX_ID for part in position):
            raise ValueError(f"a cursor position is integers 0..{MAX_ID}, not {position}")
        sealed = self._siv.encrypt(struct.pack(f">{len(position)}Q", *position),
                                   _bound_to(kind, owner))
        return base64.urlsafe_b64encode(_VERSION + sealed).rstrip(b"=").decode()

    def decode(self, kind: str, owner: str | int, cursor: str, parts: int) -> tuple[int, ...]:
        """The position a cursor of the list `kind` of `owner` stands for, `parts` integers;
        InvalidCursor for anything this list did not issue."""
        size = len(_VERSION) + _TAG_SIZE + parts * _PART_SIZE
        if (not isinstance(cursor, str) or len(cursor) != -(-size * 4 // 3)
                or not _ALPHABET.fullmatch(cursor)):
            raise InvalidCursor("is not a cursor of this list")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("is not a cursor of this list") from exc
        # Only the one spelling: base64 leaves spare bits in the last character.
        if (len(raw) != size or raw[:1] != _VERSION
                or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != cursor):
            raise InvalidCursor("is not a cursor of this list")
        try:
            plain = self._siv.decrypt(raw[1:], _bound_to(kind, owner))
        except InvalidTag as exc:
            raise InvalidCursor("is not a cursor of this list") from exc
        position = struct.unpack(f">{parts}Q", plain)
        if any(part > MAX_ID for part in position):
            raise InvalidCursor("is not a cursor of this list")
        return position


def _bound_to(kind: str, owner: str | int) -> list[bytes]:
    """The associated data of a list's cursors: each part a vector element of S2V, so no
    two lists share it however their names are chosen."""
    return [_VERSION, kind.encode(), str(owner).encode()]

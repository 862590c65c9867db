"""The page cursor codec: opaque, sealed under the shared key, bound to one list."""

from __future__ import annotations

import base64

import pytest

from common.cursors import Cursors, InvalidCursor, MissingCursorKey
from common.rules import MAX_ID

CODEC = Cursors("the key of the cursor tests")


def raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("position", [(0,), (1,), (MAX_ID,), (1_700_000_000_000_000, 7),
                                      (MAX_ID, MAX_ID)])
def test_a_cursor_round_trips(position):
    cursor = CODEC.encode("home", 42, *position)
    assert CODEC.decode("home", 42, cursor, len(position)) == position


def test_a_cursor_is_short_url_safe_and_the_same_for_the_same_position():
    one, two = CODEC.encode("followers", "ada", 1, 2), CODEC.encode("user-tweets", 7, 9)
    assert (len(one), len(two)) == (44, 34)
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in one + two)
    assert CODEC.encode("followers", "ada", 1, 2) == one


def test_another_key_opens_a_cursor_with_the_same_key_only():
    cursor = CODEC.encode("home", 42, 9)
    assert Cursors("the key of the cursor tests").decode("home", 42, cursor, 1) == (9,)
    with pytest.raises(InvalidCursor):
        Cursors("another key, another deployment").decode("home", 42, cursor, 1)


def test_a_cursor_of_another_kind_or_owner_is_refused():
    cursor = CODEC.encode("user-tweets", 42, 9)
    for kind, owner in [("home", 42), ("user-tweets", 43), ("user-tweets", "42 "),
                        ("followers", 42)]:
        with pytest.raises(InvalidCursor):
            CODEC.decode(kind, owner, cursor, 1)


def test_changing_any_byte_or_bit_is_refused():
    cursor = CODEC.encode("followers", "ada", 1_700_000_000_000_000, 7)
    sealed = raw(cursor)
    for index in range(len(sealed)):
        for bit in (0x01, 0x80):
            flipped = bytearray(sealed)
            flipped[index] ^= bit
            with pytest.raises(InvalidCursor):
                CODEC.decode("followers", "ada", text(bytes(flipped)), 2)


def test_changing_any_character_is_refused():
    cursor = CODEC.encode("home", 42, 9)
    for index, char in enumerate(cursor):
        other = "B" if char == "A" else "A"
        with pytest.raises(InvalidCursor):
            CODEC.decode("home", 42, cursor[:index] + other + cursor[index + 1:], 1)


def test_a_cut_or_lengthened_cursor_is_refused():
    cursor = CODEC.encode("followers", "ada", 5, 6)
    for cut in [cursor[:-1], cursor[:-4], cursor[1:], cursor[:34], "", cursor + "A",
                cursor + "AAAA", cursor + "=", cursor + cursor]:
        with pytest.raises(InvalidCursor):
            CODEC.decode("followers", "ada", cut, 2)


def test_a_cursor_of_one_integer_is_not_read_as_one_of_two():
    with pytest.raises(InvalidCursor):
        CODEC.decode("home", 42, CODEC.encode("home", 42, 9), 2)


@pytest.mark.parametrize("cursor", [
    text(b"c1:home:9"),                               # the old, unsealed form
    text(b"\x01" + bytes(24)), text(b"\x02" + bytes(24)),  # forged: no valid tag
    "not base64 !", "\u00e9" * 34, "+/" * 17, None, 34,
])
def test_a_forged_or_foreign_cursor_is_refused(cursor):
    with pytest.raises(InvalidCursor):
        CODEC.decode("home", 42, cursor, 1)


def test_a_version_byte_other_than_the_one_issued_is_refused():
    sealed = bytearray(raw(CODEC.encode("home", 42, 9)))
    sealed[0] = 2
    with pytest.raises(InvalidCursor):
        CODEC.decode("home", 42, text(bytes(sealed)), 1)


@pytest.mark.parametrize("secret", ["", None, "fifteen chars!!"])
def test_no_codec_without_a_key_of_sixteen_characters(secret):
    with pytest.raises(MissingCursorKey, match="MURMUR_CURSOR_KEY"):
        Cursors(secret)


@pytest.mark.parametrize("position", [(), (-1,), (MAX_ID + 1,)])
def test_only_positions_of_ids_are_encoded(position):
    with pytest.raises(ValueError):
        CODEC.encode("home", 42, *position)

"""Follow-list cursors: a follow's position through the shared cursor codec, bound to the
list of one user."""

from __future__ import annotations

import base64
import struct
from datetime import datetime, timezone

import pytest

from common.cursors import Cursors, InvalidCursor
from users.domain.model import Position
from users.entrypoints.views import decode_position, encode_position

CODEC = Cursors("a key for the follow-list tests")
AT = Position(datetime(2025, 1, 1, tzinfo=timezone.utc), 42)


@pytest.mark.parametrize("kind", ["followers", "following"])
def test_a_cursor_round_trips_to_the_microsecond(kind):
    position = Position(datetime(2025, 3, 4, 5, 6, 7, 891_011, tzinfo=timezone.utc),
                        (1 << 63) - 1)
    cursor = encode_position(CODEC, kind, "ada", position)
    assert decode_position(CODEC, kind, "ada", cursor) == position


def test_a_cursor_is_url_safe_unpadded_and_does_not_show_the_position():
    cursor = encode_position(CODEC, "followers", "ada", AT)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    micros = (AT.followed_at - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 1e6
    assert struct.pack(">Q", 42) not in raw and struct.pack(">Q", int(micros)) not in raw


def test_a_cursor_of_one_list_is_refused_by_the_other():
    cursor = encode_position(CODEC, "followers", "ada", AT)
    with pytest.raises(InvalidCursor):
        decode_position(CODEC, "following", "ada", cursor)


def test_a_cursor_of_one_users_list_is_refused_by_another_users():
    cursor = encode_position(CODEC, "followers", "ada", AT)
    with pytest.raises(InvalidCursor):
        decode_position(CODEC, "followers", "bob", cursor)


@pytest.mark.parametrize("cursor", ["", "not base64 !", "%%%", "////", "\u00e9\u00e9",
                                    "MTpmb2xsb3dlcnM6MTo0Mg", "A" * 44])
def test_anything_not_issued_here_is_rejected(cursor):
    with pytest.raises(InvalidCursor):
        decode_position(CODEC, "followers", "ada", cursor)

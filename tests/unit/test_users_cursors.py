"""Opaque follow-list cursors."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from users.cursors import InvalidCursor, decode_cursor, encode_cursor
from users.domain import Position


def test_a_cursor_round_trips_to_the_microsecond():
    position = Position(datetime(2025, 3, 4, 5, 6, 7, 891_011, tzinfo=timezone.utc),
                        (1 << 63) - 1)
    assert decode_cursor(encode_cursor(position)) == position


def test_a_cursor_is_url_safe_and_unpadded():
    cursor = encode_cursor(Position(datetime(2025, 1, 1, tzinfo=timezone.utc), 42))
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", [
    "", "not base64 !", "%%%", _b64("f1:abc:1"), _b64("f1:1:-5"), _b64("f2:1:2"),
    _b64("f1:1"), _b64("f1:1:2:3"), _b64(f"f1:1:{1 << 63}"), _b64("f1:99999999999999999999:1"),
    "////", "\u00e9\u00e9",
])
def test_anything_not_issued_here_is_rejected(cursor):
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)

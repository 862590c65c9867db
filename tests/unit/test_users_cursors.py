"""Follow-list cursors: a follow's position through the shared cursor codec."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from common.cursors import InvalidCursor
from users.domain.model import Position
from users.entrypoints.views import decode_position, encode_position


@pytest.mark.parametrize("kind", ["followers", "following"])
def test_a_cursor_round_trips_to_the_microsecond(kind):
    position = Position(datetime(2025, 3, 4, 5, 6, 7, 891_011, tzinfo=timezone.utc),
                        (1 << 63) - 1)
    assert decode_position(kind, encode_position(kind, position)) == position


def test_a_cursor_is_url_safe_and_unpadded():
    cursor = encode_position("followers", Position(datetime(2025, 1, 1, tzinfo=timezone.utc), 42))
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor


def test_a_cursor_of_one_list_is_refused_by_the_other():
    cursor = encode_position("followers", Position(datetime(2025, 1, 1, tzinfo=timezone.utc), 42))
    with pytest.raises(InvalidCursor):
        decode_position("following", cursor)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "", "not base64 !", "%%%", _b64("c1:followers:abc:1"), _b64("c1:followers:1:-5"),
    _b64("c2:followers:1:2"), _b64("c1:followers:1"), _b64("c1:followers:1:2:3"),
    _b64(f"c1:followers:1:{1 << 63}"), _b64("c1:followers:99999999999999999999:1"),
    _b64("c1:followers:9223372036854775807:1"),  # a valid codec value, but no datetime
    "////", "\u00e9\u00e9",
])
def test_anything_not_issued_here_is_rejected(cursor):
    with pytest.raises(InvalidCursor):
        decode_position("followers", cursor)

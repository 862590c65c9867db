"""Event envelopes: round-trip, and anything malformed is recognised as poison."""

from __future__ import annotations

import json

import pytest

from common.events import TWEET_POSTED, Event, InvalidEvent


def test_an_event_survives_a_round_trip_through_json():
    event = Event("42", TWEET_POSTED, {"tweet_id": "7", "author_id": "3", "created_at": "x"})
    parsed = Event.from_json(event.to_json())
    assert parsed == event


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[]",
    None,
    json.dumps({"event_id": "1", "type": "TweetPosted", "version": 1, "payload": {}}).encode(),
    json.dumps({"event_id": "1", "type": "Nope", "version": 1, "occurred_at": "t",
                "payload": {}}).encode(),
    json.dumps({"event_id": "1", "type": "TweetPosted", "version": 2, "occurred_at": "t",
                "payload": {}}).encode(),
    json.dumps({"event_id": "1", "type": "TweetPosted", "version": 1, "occurred_at": "t",
                "payload": []}).encode(),
])
def test_a_malformed_envelope_is_an_invalid_event(raw):
    with pytest.raises(InvalidEvent):
        Event.from_json(raw)


def test_a_missing_payload_field_is_an_invalid_event():
    event = Event("1", TWEET_POSTED, {"tweet_id": "7"})
    assert event.require("tweet_id") == ["7"]
    with pytest.raises(InvalidEvent):
        event.require("tweet_id", "author_id")

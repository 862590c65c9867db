"""How the Postgres adapter serialises the users events into outbox rows."""

from __future__ import annotations

import json

import pytest

from common.events import Event
from users.adapters.postgres import PostgresUsers, outbox_record
from users.domain.events import ProfileChanged, UserFollowed, UserRegistered, UserUnfollowed
from users.domain.model import User

ID, OTHER = 7_000_000_000_000_000_001, 42


@pytest.mark.parametrize("event,kind,key,payload", [
    (UserRegistered(ID, "alice", "Alice", 1), "UserRegistered", str(ID),
     {"user_id": str(ID), "username": "alice", "display_name": "Alice", "version": 1}),
    (ProfileChanged(ID, "alice", "Al", 5), "ProfileChanged", str(ID),
     {"user_id": str(ID), "username": "alice", "display_name": "Al", "version": 5}),
    (UserFollowed(ID, OTHER), "UserFollowed", str(ID),
     {"follower_id": str(ID), "followee_id": str(OTHER)}),
    (UserUnfollowed(ID, OTHER), "UserUnfollowed", str(ID),
     {"follower_id": str(ID), "followee_id": str(OTHER)}),
])
def test_each_event_becomes_its_type_key_and_payload(event, kind, key, payload):
    assert outbox_record(event) == (kind, key, payload)


def test_a_profile_changed_event_is_made_from_the_edited_user():
    from datetime import datetime, timezone

    user = User(ID, "alice", "Al", "bio", 3, 4, 6, datetime.now(timezone.utc))
    assert ProfileChanged.of(user) == ProfileChanged(ID, "alice", "Al", 6)


class RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple]] = []

    def execute(self, query, params=()):
        self.statements.append((query, params))


@pytest.mark.parametrize("event,topic", [
    (UserRegistered(ID, "alice", "Alice", 1), "test.users.v1"),
    (ProfileChanged(ID, "alice", "Al", 2), "test.users.v1"),
    (UserFollowed(ID, OTHER), "test.follows.v1"),
    (UserUnfollowed(ID, OTHER), "test.follows.v1"),
])
def test_the_outbox_row_holds_topic_key_envelope_and_the_given_trace(event, topic):
    repo = PostgresUsers(None, "test.follows.v1", users_topic="test.users.v1", breaker=None)
    conn = RecordingConnection()
    trace = {"request_id": "r-1", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    repo._append_outbox(conn, event, trace)
    (query, (row_topic, key, payload, headers)), = conn.statements
    assert query.startswith("INSERT INTO outbox (topic, key, payload, headers)")
    kind, expected_key, expected_payload = outbox_record(event)
    assert (row_topic, key) == (topic, expected_key)
    envelope = Event.from_json(payload)
    assert (envelope.type, envelope.payload, envelope.version) == (kind, expected_payload, 1)
    assert envelope.event_id and envelope.occurred_at
    assert json.loads(headers) == trace


def test_without_a_trace_the_row_has_no_headers():
    repo = PostgresUsers(None, "f", users_topic="u", breaker=None)
    conn = RecordingConnection()
    repo._append_outbox(conn, UserRegistered(ID, "alice", "alice", 1), {})
    assert json.loads(conn.statements[0][1][3]) == {}

"""How the Postgres adapter serialises the users events into outbox rows."""

from __future__ import annotations

import json

import pytest

from common.events import Event
from users.adapters.postgres import PostgresUsers, outbox_record
from users.domain.events import (CelebrityStatusChanged, ProfileChanged, UserFollowed,
                                 UserRegistered, UserUnfollowed)
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
    # A key of its own on the compacted users topic: it must not replace the profile.
    (CelebrityStatusChanged(ID, True, 3, 2000), "CelebrityStatusChanged", f"{ID}/celebrity",
     {"user_id": str(ID), "celebrity": True, "version": 3, "followers_count": 2000}),
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
    (CelebrityStatusChanged(ID, False, 2, 4), "test.users.v1"),
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


# ---------------------------------------------------------------- celebrity status


@pytest.mark.parametrize("count,was,expected", [
    (4, False, None),  # below, and was below
    (5, False, CelebrityStatusChanged(ID, True, 3, 5)),  # reached the threshold
    (6, True, None),  # still over
    (5, True, None),  # at the threshold is a celebrity
    (4, True, CelebrityStatusChanged(ID, False, 3, 4)),  # fell below
])
def test_a_status_change_is_announced_only_when_the_count_crosses_the_threshold(
        count, was, expected):
    assert CelebrityStatusChanged.after_count_change(ID, count, was, 2, threshold=5) == expected


class CountingConnection(RecordingConnection):
    """Answers the followee's count update with (followers_count, celebrity, version)."""

    def __init__(self, followee_row: tuple) -> None:
        super().__init__()
        self.followee_row = followee_row

    def execute(self, query, params=()):
        super().execute(query, params)
        row = self.followee_row if "RETURNING followers_count" in query else None
        return type("Cursor", (), {"fetchone": lambda _self: row})()


def test_a_follow_that_makes_a_celebrity_records_the_status_and_its_event_in_its_transaction():
    repo = PostgresUsers(None, "test.follows.v1", users_topic="test.users.v1", breaker=None,
                         celebrity_threshold=5)
    conn = CountingConnection((5, False, 0))
    repo._count(conn, ID, OTHER, +1, {})
    updates = [(q, p) for q, p in conn.statements if q.startswith("UPDATE users SET celebrity")]
    assert updates == [("UPDATE users SET celebrity = %s, celebrity_version = %s WHERE id = %s",
                        (True, 1, OTHER))]
    [(_, (topic, key, payload, _))] = [s for s in conn.statements
                                       if s[0].startswith("INSERT INTO outbox")]
    assert (topic, key) == ("test.users.v1", f"{OTHER}/celebrity")
    assert Event.from_json(payload).payload == {"user_id": str(OTHER), "celebrity": True,
                                                "version": 1, "followers_count": 5}


def test_a_follow_that_changes_no_status_writes_no_status():
    repo = PostgresUsers(None, "f", users_topic="u", breaker=None, celebrity_threshold=5)
    conn = CountingConnection((3, False, 0))
    repo._count(conn, ID, OTHER, +1, {})
    assert not any(q.startswith(("UPDATE users SET celebrity", "INSERT INTO outbox"))
                   for q, _ in conn.statements)

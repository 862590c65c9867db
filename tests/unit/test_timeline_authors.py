"""The author projection: users.v1 events -> the timeline's copy of authors' profiles.

The handler and the consumer loop run against in-memory ports and a scripted consumer;
the version-stamped Cassandra writes are checked in tests/integration.
"""

from __future__ import annotations

import json
import logging
from collections import namedtuple
from datetime import datetime, timedelta, timezone

import pytest
from kafka.errors import (CommitFailedError, KafkaTimeoutError, NodeNotReadyError,
                          TopicAuthorizationFailedError)
from kafka.structs import TopicPartition

from unit._timeline_fakes import MemoryAuthors, memory_ports
from common import events, rules
from timeline.adapters.cassandra_authors import CachedAuthors, write_timestamp
from timeline.domain.commands import PostTweet, ProjectAuthor
from timeline.domain.model import SEED_VERSION, Author, seed_author
from timeline.entrypoints import authors as projection
from timeline.service_layer import handlers
from timeline.service_layer.ports import ProjectionPorts

TOPIC = "test.users.v1"
Record = namedtuple("Record", "topic partition offset key value")


def envelope(kind: str = events.PROFILE_CHANGED, occurred_at: str | None = None,
             **payload) -> bytes:
    body = {"user_id": "7", "username": "ann", "display_name": "Ann", "version": 1, **payload}
    event = events.Event(event_id="1", type=kind, payload=body)
    if occurred_at is not None:
        event = events.Event(event_id="1", type=kind, payload=body, occurred_at=occurred_at)
    return event.to_json()


# -------------------------------------------------------------------------- the handler


@pytest.fixture
def ports() -> ProjectionPorts:
    return ProjectionPorts(authors=MemoryAuthors())


def project(ports, version: int, display_name: str, user_id: int = 7) -> Author:
    return handlers.project_author(ProjectAuthor(user_id, "ann", display_name, version), ports)


def test_a_newer_profile_version_replaces_the_copy(ports):
    project(ports, 1, "Ann")
    project(ports, 2, "Ann B.")
    assert ports.authors.get_many([7]) == {7: Author(7, "ann", "Ann B.", 2)}


def test_an_older_version_arriving_late_is_ignored(ports):
    project(ports, 3, "Ann C.")
    project(ports, 2, "Ann B.")  # a redelivery, or a replay of the topic
    project(ports, 3, "Ann C.")
    assert ports.authors.get_many([7]) == {7: Author(7, "ann", "Ann C.", 3)}


def test_users_event_replaces_the_seed_of_a_first_post_and_never_the_reverse(ports):
    ports.authors.record(seed_author(7, "ann"))
    project(ports, 1, "Ann")
    ports.authors.record(seed_author(7, "ann"))  # a later post by the same user
    assert ports.authors.get_many([7])[7] == Author(7, "ann", "Ann", 1)


def test_a_user_the_projection_never_heard_of_is_not_there(ports):
    project(ports, 1, "Ann")
    assert ports.authors.get_many([8]) == {}


def test_a_user_not_yet_projected_shows_with_a_null_name_until_their_event_arrives():
    ports = memory_ports()
    posted = handlers.post_tweet(PostTweet(8, "hello"), ports)  # no username at hand
    assert handlers.show_tweet(posted.tweet.id, ports).author == Author(8, None, None)
    handlers.project_author(ProjectAuthor(8, "bob", "Bob", 1), ProjectionPorts(ports.authors))
    assert handlers.show_tweet(posted.tweet.id, ports).author == Author(8, "bob", "Bob", 1)


@pytest.mark.parametrize("command, field", [
    (ProjectAuthor(0, "ann", "Ann", 1), "user_id"),
    (ProjectAuthor(7, "", "Ann", 1), "username"),
    (ProjectAuthor(7, None, "Ann", 1), "username"),
    (ProjectAuthor(7, "ann", 5, 1), "display_name"),
    (ProjectAuthor(7, "ann", "Ann", SEED_VERSION), "version"),
    (ProjectAuthor(7, "ann", "Ann", "2"), "version"),
    (ProjectAuthor(7, "ann", "Ann", True), "version"),
])
def test_an_event_that_breaks_the_rules_is_refused_and_writes_nothing(ports, command, field):
    with pytest.raises(rules.InvalidInput) as caught:
        handlers.project_author(command, ports)
    assert [e["field"] for e in caught.value.errors] == [field]
    assert ports.authors.writes == 0


def test_the_write_timestamp_orders_writes_as_versions():
    assert write_timestamp(SEED_VERSION) < write_timestamp(1) < write_timestamp(2)


# ---------------------------------------------------------------------- the messages


def test_a_profile_event_becomes_the_command_to_apply():
    event, command = projection.command_from(envelope(events.USER_REGISTERED, version=4))
    assert event.type == events.USER_REGISTERED
    assert command == ProjectAuthor(7, "ann", "Ann", 4)


def test_other_event_types_are_not_for_the_projection():
    raw = events.Event("1", events.USER_FOLLOWED, {"follower_id": "1"}).to_json()
    event, command = projection.command_from(raw)
    assert event.type == events.USER_FOLLOWED and command is None


@pytest.mark.parametrize("raw", [
    b"not json", None, b"[]", json.dumps({"type": "ProfileChanged"}).encode(),
    envelope(user_id="007"), envelope(user_id="-1"), envelope(user_id=None),
    events.Event("1", events.PROFILE_CHANGED, {"user_id": "7"}).to_json(),
])
def test_a_message_that_can_never_be_applied_is_an_invalid_event(raw):
    with pytest.raises(events.InvalidEvent):
        projection.command_from(raw)


def test_the_age_of_an_event_is_read_from_its_envelope():
    then = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert projection.age_seconds(then.isoformat(), (then + timedelta(seconds=2)).timestamp()) \
        == pytest.approx(2.0)
    assert projection.age_seconds("yesterday", then.timestamp()) is None


# ------------------------------------------------------------------------- the loop


class ScriptedConsumer:
    """A KafkaConsumer stand-in: each poll returns the next scripted batch; a seek makes
    the partition's records from that offset come again on the next poll."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.positions: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.fail_commit: BaseException | None = None

    def poll(self, timeout_ms, max_records):
        batch: dict[TopicPartition, list[Record]] = {}
        for record in self.records:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset >= self.positions.get(tp, 0):
                batch.setdefault(tp, []).append(record)
        for tp, records in batch.items():
            self.positions[tp] = records[-1].offset + 1
        return batch

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))
        self.positions[tp] = offset

    def commit(self, offsets):
        if self.fail_commit is not None:
            raise self.fail_commit
        plain = {tp: meta.offset for tp, meta in offsets.items()}
        self.commits.append(plain)
        self.committed.update(plain)

    def assignment(self):
        return {TopicPartition(TOPIC, p) for p in {r.partition for r in self.records}}

    def highwater(self, tp):
        return max((r.offset + 1 for r in self.records if r.partition == tp.partition),
                   default=0)

    def position(self, tp):
        return self.positions.get(tp, 0)


def records(*values: bytes, partition: int = 0) -> list[Record]:
    return [Record(TOPIC, partition, offset, b"7", value) for offset, value in enumerate(values)]


def loop(consumer, authors) -> projection.Projector:
    return projection.Projector(consumer, ProjectionPorts(authors), TOPIC,
                                backoff_initial=0.2, backoff_max=1.0)


def test_the_loop_applies_each_event_and_commits_after_the_writes():
    consumer = ScriptedConsumer(records(envelope(version=1, display_name="Ann"),
                                        envelope(version=2, display_name="Ann B.")))
    authors = MemoryAuthors()
    assert loop(consumer, authors).run_once() is True
    assert authors.rows[7] == Author(7, "ann", "Ann B.", 2)
    assert consumer.committed == {TopicPartition(TOPIC, 0): 2}


def test_a_poison_message_is_logged_skipped_and_committed_past(caplog):
    consumer = ScriptedConsumer(records(b"{broken", envelope(version=1, user_id="x"),
                                        envelope(version=0), envelope(version=3)))
    authors = MemoryAuthors()
    with caplog.at_level(logging.WARNING, logger="murmur.timeline.authors"):
        assert loop(consumer, authors).run_once() is True
    assert authors.rows[7].version == 3
    assert consumer.committed == {TopicPartition(TOPIC, 0): 4}
    assert caplog.text.count("skipped a users.v1 message") == 3


def test_a_failed_write_rewinds_the_partition_and_backs_off_without_skipping():
    consumer = ScriptedConsumer(records(envelope(version=1, display_name="Ann"),
                                        envelope(version=2, display_name="Ann B.")))
    authors = MemoryAuthors()
    authors.down = True
    projector = loop(consumer, authors)
    assert projector.run_once() is False
    assert consumer.seeks == [(TopicPartition(TOPIC, 0), 0)]
    assert consumer.committed == {}
    assert projector.backoff == 0.2
    assert projector.run_once() is False
    assert projector.backoff == 0.4  # growing while the store stays away
    authors.down = False
    assert projector.run_once() is True
    assert projector.backoff == 0.0
    assert authors.rows[7] == Author(7, "ann", "Ann B.", 2)
    assert consumer.committed == {TopicPartition(TOPIC, 0): 2}


def test_a_failed_write_holds_back_its_partition_only():
    consumer = ScriptedConsumer(records(envelope(version=1), partition=0)
                                + records(envelope(user_id="8", username="bob", version=1),
                                          partition=1))

    class DownFor7(MemoryAuthors):
        def record(self, author):
            if author.id == 7:
                raise ConnectionError("a replica timed out")
            super().record(author)

    authors = DownFor7()
    assert loop(consumer, authors).run_once() is False
    assert set(authors.rows) == {8}
    assert consumer.committed == {TopicPartition(TOPIC, 1): 1}


@pytest.mark.parametrize("error,said", [
    (KafkaTimeoutError("commit timed out"), "offset commit failed, Kafka unavailable"),
    (CommitFailedError("the group has already rebalanced"), "offset commit failed: "),
])
def test_a_failed_commit_is_not_fatal_the_events_simply_come_again(caplog, error, said):
    consumer = ScriptedConsumer(records(envelope(version=1)))
    consumer.fail_commit = error
    authors = MemoryAuthors()
    with caplog.at_level(logging.WARNING, logger="murmur.timeline.authors"):
        assert loop(consumer, authors).run_once() is True
    assert authors.rows[7].version == 1 and consumer.committed == {}
    assert said in caplog.text


def test_the_loop_exports_how_far_it_is_behind_and_how_many_events_it_applied():
    consumer = ScriptedConsumer(records(envelope(version=1), envelope(version=2)))
    applied = projection.EVENTS.labels(events.PROFILE_CHANGED, "applied")
    before = applied._value.get()
    loop(consumer, MemoryAuthors()).run_once()
    assert applied._value.get() == before + 2
    assert projection.CONSUMER_LAG.labels("0")._value.get() == 0


def test_the_loop_stops_when_asked_and_is_not_ready_before_its_first_poll():
    consumer = ScriptedConsumer(records(envelope(version=1)))
    projector = loop(consumer, MemoryAuthors())
    with pytest.raises(RuntimeError):
        projector.alive()
    projector.stop()
    projector.run()  # returns at once: stop was asked before
    projector.run_once()
    assert projector.alive() is None


# ------------------------------------------------------------------- the read cache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cached_authors_are_reused_for_their_ttl_only():
    inner, clock = MemoryAuthors(), Clock()
    inner.rows[7] = Author(7, "ann", "Ann", 1)
    cached = CachedAuthors(inner, ttl=5, clock=clock)
    assert cached.get_many([7]) == {7: Author(7, "ann", "Ann", 1)}
    inner.rows[7] = Author(7, "ann", "Ann B.", 2)
    assert cached.get_many([7])[7].version == 1  # within the TTL
    clock.now += 6
    assert cached.get_many([7])[7].version == 2


def test_an_author_not_found_is_asked_for_again_next_time():
    inner = MemoryAuthors()
    cached = CachedAuthors(inner, ttl=60, clock=Clock())
    assert cached.get_many([7]) == {}
    inner.rows[7] = Author(7, "ann", "Ann", 1)
    assert cached.get_many([7]) == {7: Author(7, "ann", "Ann", 1)}


def test_a_seed_written_through_the_cache_never_hides_a_newer_cached_copy():
    inner, clock = MemoryAuthors(), Clock()
    cached = CachedAuthors(inner, ttl=60, clock=clock)
    cached.record(Author(7, "ann", "Ann", 2))
    cached.record(seed_author(7, "ann"))
    assert cached.get_many([7])[7] == Author(7, "ann", "Ann", 2)
    assert inner.rows[7] == Author(7, "ann", "Ann", 2)


def test_the_id_of_a_username_is_cached_for_its_ttl_and_an_unknown_name_is_not():
    class Counting(MemoryAuthors):
        lookups = 0

        def id_by_username(self, username):
            Counting.lookups += 1
            return super().id_by_username(username)

    inner, clock = Counting(), Clock()
    cached = CachedAuthors(inner, ttl=5, size=2, clock=clock)
    assert cached.id_by_username("ann") is None
    inner.rows[7] = Author(7, "ann", "Ann", 1)
    assert cached.id_by_username("ann") == 7  # a miss was not remembered
    assert cached.id_by_username("ann") == 7
    assert Counting.lookups == 2
    clock.now += 6
    assert cached.id_by_username("ann") == 7
    assert Counting.lookups == 3
    for i in range(1, 4):
        inner.rows[i] = Author(i, f"u{i}", f"U{i}", 1)
        cached.id_by_username(f"u{i}")
    assert list(cached._ids) == ["u2", "u3"]


def test_the_cache_keeps_at_most_its_size():
    inner = MemoryAuthors()
    for i in range(1, 6):
        inner.rows[i] = Author(i, f"u{i}", f"U{i}", 1)
    cached = CachedAuthors(inner, ttl=60, size=3, clock=Clock())
    cached.get_many([1, 2, 3, 4, 5])
    assert len(cached._entries) == 3
    assert list(cached._entries) == [3, 4, 5]


def test_a_failing_poll_is_retried_with_backoff_instead_of_ending_the_process():
    class FlakyConsumer(ScriptedConsumer):
        polls = 0

        def poll(self, timeout_ms, max_records):
            FlakyConsumer.polls += 1
            if FlakyConsumer.polls == 1:
                raise KafkaTimeoutError("metadata not available")
            projector.stop()
            return super().poll(timeout_ms, max_records)

    consumer = FlakyConsumer(records(envelope(version=1)))
    authors = MemoryAuthors()
    projector = projection.Projector(consumer, ProjectionPorts(authors), TOPIC,
                                     backoff_initial=0.01, backoff_max=0.01)
    projector.run()
    assert FlakyConsumer.polls == 2
    assert authors.rows[7].version == 1


@pytest.mark.parametrize("error,level,traceback", [
    (KafkaTimeoutError("metadata not available"), logging.WARNING, False),
    (NodeNotReadyError(1), logging.WARNING, False),
    (TopicAuthorizationFailedError({TOPIC}), logging.ERROR, True),
    (ValueError("a bug"), logging.ERROR, True),
], ids=["timeout", "node-not-ready", "not-authorised", "bug"])
def test_a_failing_poll_says_whether_kafka_is_away_or_refuses(caplog, error, level, traceback):
    """Both are retried; only what will not pass by itself is an error with a traceback."""

    class FailingOnce(ScriptedConsumer):
        failed = False

        def poll(self, timeout_ms, max_records):
            if not self.failed:
                self.failed = True
                raise error
            projector.stop()
            return super().poll(timeout_ms, max_records)

    consumer = FailingOnce(records(envelope(version=1)))
    authors = MemoryAuthors()
    projector = projection.Projector(consumer, ProjectionPorts(authors), TOPIC,
                                     backoff_initial=0.01, backoff_max=0.01)
    with caplog.at_level(logging.WARNING, logger="murmur.timeline.authors"):
        projector.run()
    assert authors.rows[7].version == 1
    [record] = [r for r in caplog.records if "poll failed" in r.getMessage()]
    assert record.levelno == level and (record.exc_info is not None) is traceback
    assert ("Kafka unavailable" in record.getMessage()) is not traceback

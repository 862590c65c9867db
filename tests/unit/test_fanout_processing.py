"""Poison or not: what the record processor does with each kind of failure.

Only the record itself makes it poison (it cannot be parsed, breaks the schema, or names
a user who does not exist); every other failure holds its partition and is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from common import events
from common.events import Event
from fanout.domain.errors import Refused, Unavailable, UnexpectedAnswer
from fanout.domain.model import FollowerPage, Policy
from fanout.service_layer.ports import Ports
from fanout.service_layer.records import Outcome, RecordProcessor, poison_reason

POLICY = Policy(celebrity_threshold=100, backfill_limit=10)


@dataclass
class Record:
    value: bytes | None
    topic: str = "test.tweets.v1"
    partition: int = 0
    offset: int = 42
    key: bytes | None = b"1"
    headers: list = field(default_factory=list)


class Followers:
    """Serves one page of followers, or raises the errors it is given, one per call."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    def follower_pages(self, user_id):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        yield FollowerPage([10, 11], 2)

    def followers_count(self, user_id):
        return 2


class Timelines:
    def __init__(self, down: bool = False) -> None:
        self.down, self.delivered = down, []

    def deliver(self, tweet_id, user_ids):
        if self.down:
            raise Unavailable("redis: connection refused")
        self.delivered.append((tweet_id, list(user_ids)))
        return len(user_ids)

    retract = add = remove = deliver


class DeadLetters:
    def __init__(self, down: bool = False) -> None:
        self.down, self.sent = down, []

    def send(self, message, error, attempts):
        if self.down:
            raise Unavailable("kafka down")
        self.sent.append((message, error, attempts))


def posted(tweet_id: int = 500) -> bytes:
    return Event("e1", events.TWEET_POSTED,
                 {"tweet_id": str(tweet_id), "author_id": "1"}).to_json()


def processor(followers=None, timelines=None, dlq=None, attempts=3):
    ports = Ports(followers=followers or Followers(), home_timelines=timelines or Timelines(),
                  tweets=None, dead_letters=dlq or DeadLetters())
    return RecordProcessor(ports, POLICY, attempts=attempts, sleep=lambda _s: None)


def test_a_valid_event_is_processed():
    timelines = Timelines()
    assert processor(timelines=timelines).process(Record(posted())) is Outcome.PROCESSED
    assert timelines.delivered == [(500, [10, 11])]


def test_a_message_that_is_not_json_is_dead_lettered_at_once():
    dlq = DeadLetters()
    followers = Followers()
    outcome = processor(followers=followers, dlq=dlq).process(Record(b"{not json"))
    assert outcome is Outcome.DEAD_LETTERED
    assert dlq.sent[0][0].value == b"{not json" and dlq.sent[0][2] == 1
    assert followers.calls == 0


def test_an_unknown_event_type_is_dead_lettered():
    dlq = DeadLetters()
    raw = Event("e", "TweetLiked", {}).to_json()
    assert processor(dlq=dlq).process(Record(raw)) is Outcome.DEAD_LETTERED
    assert len(dlq.sent) == 1


def test_a_payload_lacking_ids_is_dead_lettered_without_retries():
    dlq = DeadLetters()
    raw = Event("e", events.TWEET_POSTED, {"tweet_id": "5"}).to_json()
    assert processor(dlq=dlq).process(Record(raw)) is Outcome.DEAD_LETTERED
    assert dlq.sent[0][2] == 1


def test_a_vanished_author_is_dead_lettered_without_retries():
    dlq = DeadLetters()
    followers = Followers(Refused("404 no such user"))
    outcome = processor(followers=followers, dlq=dlq, attempts=3).process(Record(posted()))
    assert outcome is Outcome.DEAD_LETTERED
    assert followers.calls == 1
    assert isinstance(dlq.sent[0][1], Refused)


def test_a_handler_that_keeps_failing_holds_its_partition_and_is_never_dead_lettered():
    """A bug raising in a handler is the deploy's fault, not the record's."""
    dlq = DeadLetters()
    followers = Followers(*[RuntimeError("bug")] * 5)
    records = processor(followers=followers, dlq=dlq, attempts=3)
    outcome = records.process(Record(posted()))
    assert outcome is Outcome.FAILED and outcome.holds
    assert followers.calls == 3
    assert dlq.sent == []
    assert records.failures == {("test.tweets.v1", 0): "RuntimeError: bug"}


def test_a_held_record_is_processed_once_the_fault_is_fixed():
    timelines = Timelines()
    followers = Followers(*[RuntimeError("bug")] * 3)
    records = processor(followers=followers, timelines=timelines, attempts=3)
    assert records.process(Record(posted())) is Outcome.FAILED
    assert records.process(Record(posted())) is Outcome.PROCESSED
    assert timelines.delivered == [(500, [10, 11])]
    assert records.failures == {}


def test_a_failure_that_clears_within_the_retries_is_processed():
    timelines = Timelines()
    followers = Followers(RuntimeError("hiccup"))
    outcome = processor(followers=followers, timelines=timelines).process(Record(posted()))
    assert outcome is Outcome.PROCESSED
    assert timelines.delivered == [(500, [10, 11])]


def test_users_being_down_is_retried_later_and_never_dead_lettered():
    dlq = DeadLetters()
    followers = Followers(Unavailable("users: connection refused"))
    outcome = processor(followers=followers, dlq=dlq).process(Record(posted()))
    assert outcome is Outcome.RETRY_LATER
    assert dlq.sent == []


def test_redis_being_down_is_retried_later_and_never_dead_lettered():
    dlq = DeadLetters()
    outcome = processor(timelines=Timelines(down=True), dlq=dlq).process(Record(posted()))
    assert outcome is Outcome.RETRY_LATER
    assert dlq.sent == []


def test_a_poison_message_is_retried_later_when_the_dead_letter_topic_is_down():
    outcome = processor(dlq=DeadLetters(down=True)).process(Record(b"garbage"))
    assert outcome is Outcome.RETRY_LATER


def test_a_dependency_answering_garbage_holds_the_partition_after_bounded_tries():
    """Tried `attempts` times at once, then held: the services disagree, the record is fine."""
    dlq = DeadLetters()
    followers = Followers(*[UnexpectedAnswer("users: answer is not JSON")] * 5)
    outcome = processor(followers=followers, dlq=dlq, attempts=3).process(Record(posted()))
    assert outcome is Outcome.FAILED
    assert followers.calls == 3
    assert dlq.sent == []


def test_a_fan_out_flag_that_is_not_a_boolean_is_poison():
    dlq = DeadLetters()
    raw = Event("e", events.TWEET_POSTED,
                {"tweet_id": "5", "author_id": "1", "fan_out": "yes"}).to_json()
    assert processor(dlq=dlq).process(Record(raw)) is Outcome.DEAD_LETTERED
    assert dlq.sent[0][2] == 1


@pytest.mark.parametrize("error,reason", [
    (events.InvalidEvent("payload lacks 'tweet_id'"), "invalid"),
    (Refused("users: answered 404 No such user."), "refused"),
    (Unavailable("users: connection refused"), None),
    (UnexpectedAnswer("users: refused: answered 422"), None),
    (RuntimeError("a bug"), None),
    (KeyError("tweet_id"), None),
    (TimeoutError("redis"), None),
])
def test_only_the_record_itself_makes_it_poison(error, reason):
    assert poison_reason(error) == reason

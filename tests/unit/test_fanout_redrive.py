"""The redrive: which dead letters are replayed, which stay poison, none replayed twice."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from kafka.structs import TopicPartition

from common import config as common_config
from common import events
from common.events import Event
from common.service import Service
from fanout.config import FanoutConfig
from fanout.domain.errors import Refused, Unavailable
from fanout.domain.model import FollowerPage, Policy
from fanout.entrypoints.redrive import RedriveStopped, run, summary
from fanout.service_layer.ports import Ports
from fanout.service_layer.redrive import Verdict, redrive

POLICY = Policy(celebrity_threshold=100, backfill_limit=10)
GROUP = "test.fanout"
CFG = FanoutConfig(stores=common_config.stores(), users_url="http://127.0.0.1:9",
                   timeline_url="http://127.0.0.1:9", group_id=GROUP)
DLQ = TopicPartition(CFG.dlq_topic, 0)


@dataclass
class DeadLetter:
    value: bytes | None
    offset: int = 0
    group: str = GROUP
    topic: str = CFG.dlq_topic
    partition: int = 0
    key: bytes | None = b"1"
    headers: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.headers = [("dlq.consumer.group", self.group.encode()),
                        ("dlq.error.class", b"RuntimeError")]


class Followers:
    """Two followers of author 1; `errors` are raised first, one per call."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)

    def follower_pages(self, user_id):
        if self.errors:
            raise self.errors.pop(0)
        yield FollowerPage([10, 11], 2)

    def followers_count(self, user_id):
        return 2


class Timelines:
    def __init__(self) -> None:
        self.deliveries: list[tuple[int, list[int]]] = []

    def deliver(self, tweet_id, user_ids):
        self.deliveries.append((tweet_id, list(user_ids)))
        return len(user_ids)


class Ledger:
    def __init__(self) -> None:
        self.done: set[str] = set()

    def is_done(self, event_id):
        return event_id in self.done

    def mark_done(self, event_id):
        self.done.add(event_id)


def posted(event_id: str = "e1", tweet_id: int = 500, **extra) -> bytes:
    return Event(event_id, events.TWEET_POSTED,
                 {"tweet_id": str(tweet_id), "author_id": "1", **extra}).to_json()


def ports(followers=None, timelines=None, ledger=None) -> Ports:
    return Ports(followers=followers or Followers(), home_timelines=timelines or Timelines(),
                 tweets=None, dead_letters=None, redriven=ledger or Ledger())


def test_a_processable_dead_letter_is_replayed_once_and_marked():
    p = ports()
    first = redrive(DeadLetter(posted()), p, POLICY, p.redriven)
    again = redrive(DeadLetter(posted()), p, POLICY, p.redriven)
    assert (first.event_type, first.verdict) == (events.TWEET_POSTED, Verdict.REPLAYED)
    assert again.verdict is Verdict.ALREADY_DONE
    assert p.home_timelines.deliveries == [(500, [10, 11])]


@pytest.mark.parametrize("value,kind", [
    (b"not json", "unknown"),
    (Event("e", "TweetLiked", {}).to_json(), "unknown"),  # not a type of the schema
    (Event("e", events.TWEET_POSTED, {"tweet_id": "5"}).to_json(), events.TWEET_POSTED),
    (posted(fan_out="yes"), events.TWEET_POSTED),
])
def test_a_dead_letter_that_still_breaks_the_schema_stays_poison_and_writes_nothing(value, kind):
    p = ports()
    handled = redrive(DeadLetter(value), p, POLICY, p.redriven)
    assert (handled.event_type, handled.verdict) == (kind, Verdict.STILL_POISON)
    assert p.home_timelines.deliveries == [] and p.redriven.done == set()


def test_an_author_users_still_does_not_know_stays_poison():
    p = ports(followers=Followers(Refused("users: answered 404 No such user.")))
    handled = redrive(DeadLetter(posted()), p, POLICY, p.redriven)
    assert handled.verdict is Verdict.STILL_POISON and handled.detail.startswith("refused: ")
    assert p.redriven.done == set()


@pytest.mark.parametrize("error", [Unavailable("users: down"), RuntimeError("a bug")])
def test_a_fault_that_is_not_the_dead_letters_is_raised_and_nothing_marked(error):
    p = ports(followers=Followers(error))
    with pytest.raises(type(error)):
        redrive(DeadLetter(posted()), p, POLICY, p.redriven)
    assert p.redriven.done == set()


class FakeConsumer:
    """One dead-letter partition holding `records`; remembers commits."""

    def __init__(self, records, committed: int = 0) -> None:
        self.records, self.position_at = list(records), committed
        self.commits: list[int] = []

    def partitions_for_topic(self, topic):
        return {0} if topic == CFG.dlq_topic else None

    def assign(self, partitions):
        assert partitions == [DLQ]

    def seek_to_beginning(self, *partitions):
        self.position_at = 0

    def end_offsets(self, partitions):
        return {DLQ: len(self.records)}

    def position(self, tp):
        return self.position_at

    def poll(self, timeout_ms, max_records):
        batch = self.records[self.position_at:self.position_at + 2]
        self.position_at += len(batch)
        return {DLQ: batch} if batch else {}

    def commit(self, offsets):
        self.commits.append(offsets[DLQ].offset)


def dead_letters():
    return [DeadLetter(posted("e1", 500), 0), DeadLetter(b"garbage", 1),
            DeadLetter(posted("e9", 900), 2, group="test.fanout-it-other"),
            DeadLetter(posted("e1", 500), 3),  # the same event dead-lettered twice
            DeadLetter(posted("e2", 501), 4)]


def test_a_redrive_handles_its_groups_dead_letters_committing_past_each():
    p = ports()
    consumer, lines = FakeConsumer(dead_letters()), []
    report = run(Service("fanout", CFG, p), consumer, out=lines.append)
    assert report.count(events.TWEET_POSTED, Verdict.REPLAYED) == 2
    assert report.count(events.TWEET_POSTED, Verdict.ALREADY_DONE) == 1
    assert report.count("unknown", Verdict.STILL_POISON) == 1
    assert report.other_groups == 1 and report.total == 4
    assert consumer.commits == [1, 2, 3, 4, 5]
    assert [t for t, _ in p.home_timelines.deliveries] == [500, 501]
    assert len(lines) == 4 and "already_done" in lines[2]
    assert any("already_done" in line for line in summary(report, CFG, dry_run=False))


def test_a_second_redrive_from_the_beginning_replays_nothing_again():
    p = ports()
    run(Service("fanout", CFG, p), FakeConsumer(dead_letters()), out=lambda _l: None)
    again = run(Service("fanout", CFG, p), FakeConsumer(dead_letters(), committed=5),
                from_beginning=True, out=lambda _l: None)
    assert again.count(events.TWEET_POSTED, Verdict.ALREADY_DONE) == 3
    assert again.count(events.TWEET_POSTED, Verdict.REPLAYED) == 0
    assert len(p.home_timelines.deliveries) == 2


def test_a_dry_run_lists_without_handling_marking_or_committing():
    p = ports()
    consumer, lines = FakeConsumer(dead_letters()), []
    report = run(Service("fanout", CFG, p), consumer, dry_run=True, out=lines.append)
    assert report.count(events.TWEET_POSTED, Verdict.REPLAYED) == 3  # would be
    assert consumer.commits == [] and p.home_timelines.deliveries == []
    assert p.redriven.done == set()
    assert all("would be replayed" in line for line in lines if "replayed" in line)


def test_a_redrive_stops_at_a_fault_committing_only_what_it_handled():
    p = ports(followers=Followers(Unavailable("users: connection refused")))
    consumer = FakeConsumer(dead_letters())
    with pytest.raises(RedriveStopped, match=r"@0: Unavailable") as stopped:
        run(Service("fanout", CFG, p), consumer, out=lambda _l: None)
    assert consumer.commits == [] and stopped.value.report.total == 0

"""Celebrity status in timeline: the projection keeps users' announcements, each post is
decided fanned out or merged at read time from it, and the tweet's events carry that."""

from __future__ import annotations

from collections import namedtuple

import pytest
from kafka.structs import TopicPartition

from unit._timeline_fakes import MemoryAuthors, memory_ports
from common import events, rules
from timeline.domain.commands import DeleteTweet, PostTweet, ProjectAuthor, ProjectCelebrityStatus
from timeline.domain.events import TweetDeleted, TweetPosted
from timeline.domain.model import Author, CelebrityStatus, fans_out
from timeline.entrypoints import authors as projection
from timeline.service_layer import handlers
from timeline.service_layer.ports import ProjectionPorts

AUTHOR = 7
TOPIC = "test.users.v1"
Record = namedtuple("Record", "topic partition offset key value")


def status_event(celebrity=True, version=1, user_id="7") -> bytes:
    return events.Event("s1", events.CELEBRITY_STATUS_CHANGED,
                        {"user_id": user_id, "celebrity": celebrity, "version": version,
                         "followers_count": 5}).to_json()


def become(ports, celebrity: bool, version: int) -> None:
    handlers.project_celebrity_status(ProjectCelebrityStatus(AUTHOR, celebrity, version),
                                      ProjectionPorts(ports.authors))


def post(ports, text: str = "hello"):
    return handlers.post_tweet(PostTweet(AUTHOR, text, author_username="ann"), ports).tweet


# ------------------------------------------------------------------------ the decision


@pytest.mark.parametrize("author,expected", [
    (None, True),  # not in the copy (a new user), or the copy did not answer
    (Author(AUTHOR, "ann", "Ann", 1), True),
    (Author(AUTHOR, "ann", "Ann", 1, celebrity=True), False),
    (Author(AUTHOR, celebrity=True), False),  # status known before the profile
])
def test_a_post_is_fanned_out_unless_its_author_is_a_celebrity(author, expected):
    assert fans_out(author) is expected


def test_a_celebritys_post_is_stored_and_announced_as_not_fanned_out():
    ports = memory_ports()
    become(ports, True, 1)
    tweet = post(ports)
    assert tweet.fan_out is False and ports.tweets.tweets[tweet.id].fan_out is False
    [(event, _)] = ports.tweets.outbox
    assert isinstance(event, TweetPosted) and event.payload()[events.FAN_OUT] is False


def test_an_ordinary_post_is_fanned_out():
    ports = memory_ports()
    tweet = post(ports)
    assert tweet.fan_out is True
    assert ports.tweets.outbox[0][0].payload()[events.FAN_OUT] is True


def test_without_an_answer_from_the_projection_the_post_is_accepted_and_fanned_out():
    ports = memory_ports()
    become(ports, True, 1)
    ports.authors.down = True
    tweet = post(ports)
    assert tweet.fan_out is True and tweet.id in ports.tweets.tweets


@pytest.mark.parametrize("at_posting,at_delete", [(False, True), (True, False)])
def test_a_delete_carries_the_posts_decision_not_todays_status(at_posting, at_delete):
    ports = memory_ports()
    become(ports, at_posting, 1)
    tweet = post(ports)
    become(ports, at_delete, 2)
    handlers.delete_tweet(DeleteTweet(tweet.id, AUTHOR), ports)
    deleted = ports.tweets.outbox[-1][0]
    assert isinstance(deleted, TweetDeleted)
    assert deleted.payload()[events.FAN_OUT] is (not at_posting)


def test_the_delete_of_a_tweet_stored_before_the_decision_carries_none():
    assert events.FAN_OUT not in TweetDeleted(1, 2, 3).payload()
    assert TweetDeleted(1, 2, 3, fan_out=False).payload()[events.FAN_OUT] is False


def test_a_status_known_before_the_profile_still_lets_the_post_seed_the_name():
    ports = memory_ports()
    become(ports, True, 1)
    posted = handlers.post_tweet(PostTweet(AUTHOR, "hi", author_username="ann"), ports)
    assert posted.author.username == "ann" and posted.tweet.fan_out is False
    assert ports.authors.get_many([AUTHOR])[AUTHOR] == Author(AUTHOR, "ann", "ann", 0, True)


# ---------------------------------------------------------------------- the projection


def test_the_newest_status_wins_whatever_the_order_of_delivery():
    ports = memory_ports()
    become(ports, True, 3)
    become(ports, False, 2)  # late
    assert ports.authors.get_many([AUTHOR])[AUTHOR].celebrity is True
    become(ports, False, 4)
    assert ports.authors.get_many([AUTHOR])[AUTHOR].celebrity is False


def test_status_and_profile_never_replace_each_other():
    ports = memory_ports()
    become(ports, True, 5)
    handlers.project_author(ProjectAuthor(AUTHOR, "ann", "Ann", 1), ProjectionPorts(ports.authors))
    assert ports.authors.get_many([AUTHOR])[AUTHOR] == Author(AUTHOR, "ann", "Ann", 1, True)


@pytest.mark.parametrize("command,field", [
    (ProjectCelebrityStatus(0, True, 1), "user_id"),
    (ProjectCelebrityStatus(AUTHOR, "yes", 1), "celebrity"),
    (ProjectCelebrityStatus(AUTHOR, True, 0), "version"),
    (ProjectCelebrityStatus(AUTHOR, True, True), "version"),
])
def test_a_status_event_that_breaks_the_rules_is_refused_and_writes_nothing(command, field):
    authors = MemoryAuthors()
    with pytest.raises(rules.InvalidInput) as refused:
        handlers.project_celebrity_status(command, ProjectionPorts(authors))
    assert [e["field"] for e in refused.value.errors] == [field]
    assert authors.writes == 0


def test_a_status_event_becomes_the_command_to_apply():
    event, command = projection.command_from(status_event(celebrity=False, version=2))
    assert event.type == events.CELEBRITY_STATUS_CHANGED
    assert command == ProjectCelebrityStatus(AUTHOR, False, 2)


def test_a_status_event_without_its_fields_is_an_invalid_event():
    raw = events.Event("s", events.CELEBRITY_STATUS_CHANGED, {"user_id": "7"}).to_json()
    with pytest.raises(events.InvalidEvent):
        projection.command_from(raw)


class Consumer:
    def __init__(self, batch) -> None:
        self.batch, self.committed = batch, {}

    def poll(self, timeout_ms, max_records):
        batch, self.batch = self.batch, {}
        return batch

    def commit(self, offsets):
        self.committed.update({tp: meta.offset for tp, meta in offsets.items()})

    def assignment(self):
        return set()


def test_the_loop_applies_status_events_and_skips_invalid_ones():
    tp = TopicPartition(TOPIC, 0)
    values = [status_event(True, 1), status_event("yes", 2), status_event(False, 3)]
    consumer = Consumer({tp: [Record(TOPIC, 0, i, b"7/celebrity", v)
                              for i, v in enumerate(values)]})
    authors = MemoryAuthors()
    assert projection.Projector(consumer, ProjectionPorts(authors), TOPIC).run_once()
    assert authors.statuses[AUTHOR] == CelebrityStatus(AUTHOR, False, 3)
    assert consumer.committed == {tp: 3}

"""Fan-out's calls to users and timeline over a real socket (common.client underneath):
paging, the record's deadline, and which answers are outages, refusals or garbage."""

from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

from common import events, resilience
from common.client import HttpClient, PeerConfig
from common.events import Event
from fanout.adapters.timeline import TimelineTweetIds
from fanout.adapters.users import UsersFollowerSource
from fanout.domain.errors import Refused, Unavailable, UnexpectedAnswer
from fanout.domain.model import Policy
from fanout.service_layer.ports import Ports
from fanout.service_layer.records import Outcome, RecordProcessor
from unit._fake_peer import Answer, FakeService, running_service


@pytest.fixture
def users() -> Iterator[FakeService]:
    with running_service() as server:
        yield server


def client(url: str, *, read: float = 0.5, attempts: int = 1, fail_max: int = 50) -> HttpClient:
    return HttpClient(PeerConfig("users", url, connect_timeout=0.5, read_timeout=read,
                                 pool_size=2, fail_max=fail_max, reset_timeout=60,
                                 retry_attempts=attempts, retry_base=0.001))


def source(url: str, **settings) -> UsersFollowerSource:
    return UsersFollowerSource(client(url, **settings), page_size=4)


deadline_in = resilience.deadline  # a block run as a request with that budget left


def page(ids: list[int], next_after: int | None, count: int) -> Answer:
    return Answer(200, {"ids": [str(i) for i in ids],
                        "next_after": str(next_after) if next_after else None,
                        "followers_count": count})


def test_follower_pages_walk_every_page_with_after(users):
    users.script = [page([100, 101, 102, 103], 103, 11), page([104, 105, 106, 107], 107, 11)]
    users.answer = page([108, 109, 110], None, 11)
    pages = list(source(users.url).follower_pages(1))
    assert [list(p.ids) for p in pages] == [[100, 101, 102, 103], [104, 105, 106, 107],
                                            [108, 109, 110]]
    assert [r.path for r in users.received] == [
        "/internal/users/1/follower-ids?limit=4",
        "/internal/users/1/follower-ids?limit=4&after=103",
        "/internal/users/1/follower-ids?limit=4&after=107"]


def test_the_follower_count_comes_from_a_one_id_page(users):
    users.answer = page([100], 100, 30)
    assert source(users.url).followers_count(1) == 30
    assert users.received[0].path.endswith("?limit=1")


def test_recent_tweet_ids_are_read_with_a_bounded_limit(users):
    users.answer = Answer(200, {"ids": ["9", "8"]})
    assert TimelineTweetIds(client(users.url)).recent_tweet_ids(7, 5000) == [9, 8]
    assert users.received[0].path == "/internal/authors/7/tweet-ids?limit=800"


# ---------------------------------------------------------------------- the deadline


def test_every_call_carries_the_records_remaining_budget_even_from_the_read_ahead(users):
    users.script = [page([100], 100, 2)]
    users.answer = page([101], None, 2)
    started_ms = time.time() * 1000
    with deadline_in(5.0):
        assert len(list(source(users.url, read=10.0).follower_pages(1))) == 2
    sent = [int(r.headers["Murmur-Deadline"]) for r in users.received]
    assert len(sent) == 2  # the second page was fetched on the read-ahead thread
    assert all(started_ms + 4000 < ms <= time.time() * 1000 + 5000 for ms in sent)


def test_a_hanging_users_is_given_up_at_the_records_deadline(users):
    users.answer = Answer(hang=True)
    started = time.monotonic()
    with deadline_in(0.3), pytest.raises(Unavailable):
        source(users.url, read=10.0).followers_count(1)
    assert time.monotonic() - started < 3  # its read timeout alone would be 10 s


def test_a_record_out_of_time_calls_nobody(users):
    with deadline_in(-1.0), pytest.raises(Unavailable):
        source(users.url).followers_count(1)
    assert users.received == []


# ------------------------------------------------------------------- error classes


@pytest.fixture
def closed_url() -> str:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("answer", [
    Answer(500, {"title": "boom"}), Answer(503, {"title": "down"}), Answer(429, {}),
    Answer(503, {"status": 503}, {"Retry-After": "2",
                                  "Content-Type": "application/problem+json"}),
])
def test_users_outages_are_unavailable(users, answer):
    users.answer = answer
    with pytest.raises(Unavailable):
        list(source(users.url).follower_pages(1))


def test_users_unreachable_is_unavailable(closed_url):
    with pytest.raises(Unavailable):
        source(closed_url).followers_count(1)


def test_an_unknown_user_is_refused(users):
    users.answer = Answer(404, {"status": 404, "title": "Not Found"})
    with pytest.raises(Refused):
        source(users.url).followers_count(1)


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
def test_a_refusal_other_than_not_found_is_a_disagreement_not_poison(users, status):
    """The request fan-out made is wrong (a deploy or a config), not the event."""
    users.answer = Answer(status, {"status": status})
    with pytest.raises(UnexpectedAnswer, match=f"refused: users: answered {status}"):
        source(users.url).followers_count(1)


@pytest.mark.parametrize("answer", [
    Answer(200, raw=b"<html>gateway error</html>", headers={"Content-Type": "text/html"}),
    Answer(200, ["1", "2"]),
    Answer(200, {"ids": ["x"], "followers_count": 1}),
    Answer(200, {"followers_count": 1}),
])
def test_an_answer_that_is_not_the_agreed_json_is_unexpected_and_asked_once(users, answer):
    users.answer = answer
    with pytest.raises(UnexpectedAnswer):
        source(users.url, attempts=5).followers_count(1)
    assert len(users.received) == 1


class DeadLetters:
    def __init__(self) -> None:
        self.sent = []

    def send(self, message, error, attempts):
        self.sent.append((error, attempts))


class Record:
    topic, partition, offset, key, headers = "test.tweets.v1", 0, 7, b"1", []

    def __init__(self, value: bytes) -> None:
        self.value = value


def test_users_answering_garbage_holds_the_event_after_bounded_tries(users):
    """Not the event's fault: tried a few times, then held (never dead-lettered)."""
    users.answer = Answer(200, raw=b"<html>oops</html>", headers={"Content-Type": "text/html"})
    dlq = DeadLetters()
    ports = Ports(followers=source(users.url, attempts=3), home_timelines=None, tweets=None,
                  dead_letters=dlq)
    processor = RecordProcessor(ports, Policy(celebrity_threshold=100, backfill_limit=10),
                                attempts=3, sleep=lambda _s: None)
    posted = Event("e1", events.TWEET_POSTED, {"tweet_id": "500", "author_id": "1"})
    assert processor.process(Record(posted.to_json())) is Outcome.FAILED
    assert len(users.received) == 3  # one call per try of the record, none retried inside
    assert dlq.sent == []
    assert processor.failures[("test.tweets.v1", 0)].startswith("UnexpectedAnswer: ")

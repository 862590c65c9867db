"""Fanout's guards: the users breaker keeps outages transient and ignores refusals, and the
consumer-lag gauge."""

from __future__ import annotations

from typing import Iterator

import pytest
from kafka.structs import TopicPartition

from common.client import HttpClient, PeerConfig
from fanout.adapters.users import UsersFollowerSource
from fanout.domain.errors import Refused, Unavailable
from fanout.entrypoints.lag import CONSUMER_LAG, LagMonitor, partition_lag
from unit._fake_peer import Answer, FakeService, running_service


@pytest.fixture
def users() -> Iterator[FakeService]:
    with running_service() as server:
        yield server


def source(url: str, fail_max: int) -> UsersFollowerSource:
    return UsersFollowerSource(HttpClient(PeerConfig(
        "users", url, connect_timeout=0.5, read_timeout=0.5, pool_size=2, fail_max=fail_max,
        reset_timeout=60, retry_attempts=1)))


def test_a_users_outage_opens_the_breaker_and_stays_transient(users):
    users.answer = Answer(503, {"title": "down"})
    follower_source = source(users.url, fail_max=2)
    for _ in range(2):
        with pytest.raises(Unavailable):
            follower_source.followers_count(1)
    # Open: refused at once, still as Unavailable, so the worker pauses the partition
    # (retry later) instead of dead-lettering the event.
    with pytest.raises(Unavailable, match="open"):
        follower_source.followers_count(1)
    assert len(users.received) == 2


def test_an_unknown_user_is_refused_without_tripping_the_breaker(users):
    users.answer = Answer(404, {"status": 404})
    follower_source = source(users.url, fail_max=1)
    for _ in range(3):
        with pytest.raises(Refused):
            follower_source.followers_count(1)
    assert len(users.received) == 3
    assert not follower_source.http.breaker.is_open


def test_users_answers_pass_through_a_closed_breaker(users):
    users.answer = Answer(200, {"ids": ["2"], "next_after": None, "followers_count": 1})
    assert [list(p.ids) for p in source(users.url, fail_max=1).follower_pages(1)] == [[2]]


def test_lag_is_end_minus_committed_and_counts_from_the_start_without_a_commit():
    a, b, c = (TopicPartition("t", n) for n in range(3))
    lag = partition_lag(end={a: 10, b: 7, c: 3}, committed={a: 4, b: 7}, start={c: 1})
    assert lag == {a: 6, b: 0, c: 2}


class FakeOffsets:
    def __init__(self) -> None:
        self.closed = 0

    def read(self):
        tp = TopicPartition("test.lag.v1", 3)
        return {tp: 42}, {tp: 40}, {}

    def close(self):
        self.closed += 1


def test_a_refresh_sets_the_lag_gauge_per_topic_and_partition():
    offsets = FakeOffsets()
    monitor = LagMonitor(offsets, interval=60)
    assert monitor.refresh() == {TopicPartition("test.lag.v1", 3): 2}
    assert CONSUMER_LAG.labels("test.lag.v1", "3")._value.get() == 2
    monitor.close()
    assert offsets.closed == 1

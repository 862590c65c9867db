"""Fanout's guards: the users breaker keeps outages transient, and the consumer-lag gauge."""

from __future__ import annotations

import uuid

import pytest
import requests
from kafka.structs import TopicPartition

from common import resilience
from fanout.adapters import http
from fanout.adapters.users import UsersFollowerSource
from fanout.domain import Refused, Unavailable
from fanout.lag import CONSUMER_LAG, LagMonitor, partition_lag


class Response:
    def __init__(self, status: int, body=None) -> None:
        self.status_code, self.body, self.text = status, body, str(body)

    def json(self):
        return self.body


class ScriptedSession:
    """Answers GETs from a script: a Response, or an exception to raise."""

    def __init__(self, *script) -> None:
        self.script, self.calls = list(script), 0

    def get(self, url, params, timeout):
        self.calls += 1
        answer = self.script.pop(0) if self.script else Response(
            200, {"ids": ["2"], "next_after": None, "followers_count": 1})
        if isinstance(answer, Exception):
            raise answer
        return answer


def fresh_breaker(fail_max: int) -> resilience.Breaker:
    return http.breaker(f"users-{uuid.uuid4().hex[:8]}", fail_max=fail_max, reset_timeout=60)


def test_a_users_outage_opens_the_breaker_and_stays_transient():
    session = ScriptedSession(requests.ConnectionError("refused"), Response(503))
    source = UsersFollowerSource("http://users", session, breaker=fresh_breaker(2))
    for _ in range(2):
        with pytest.raises(Unavailable):
            source.followers_count(1)
    # Open: refused at once, still as Unavailable, so the worker pauses the partition
    # (retry later) instead of dead-lettering the event.
    with pytest.raises(Unavailable, match="open"):
        source.followers_count(1)
    assert session.calls == 2


def test_an_unknown_user_is_refused_without_tripping_the_breaker():
    breaker = fresh_breaker(1)
    source = UsersFollowerSource("http://users", ScriptedSession(Response(404), Response(404)),
                                 breaker=breaker)
    for _ in range(2):
        with pytest.raises(Refused):
            source.followers_count(1)
    assert not breaker.is_open


def test_users_answers_pass_through_a_closed_breaker():
    source = UsersFollowerSource("http://users", ScriptedSession(), breaker=fresh_breaker(1))
    assert [list(p.ids) for p in source.follower_pages(1)] == [[2]]


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
